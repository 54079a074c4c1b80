"""``manage.py simplejwt_doctor [--token TOKEN | --token-file PATH | -] [--json]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from simplejwt_patches.diagnostics import redact
from simplejwt_patches.doctor import diagnose, render_text, strip_bearer


class Command(BaseCommand):
    help = (
        "Explain SimpleJWT's JWKS setup and, given a token, every check authentication runs on it, with fixes. "
        "Exit status 0 when the token would be accepted (or, without a token, when the JWKS is healthy)."
    )
    requires_system_checks: Any = ()  # diagnose even a project whose checks fail

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--token", help="the access token (avoid: it lands in shell history; prefer - or a file)")
        source.add_argument("--token-file", help="read the token from this file ('-' for standard input)")
        source.add_argument("stdin", nargs="?", choices=["-"], help="read the token from standard input")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        token = options["token"]
        if options["token_file"] == "-" or options["stdin"] == "-":
            token = sys.stdin.read()
        elif options["token_file"]:
            try:
                token = Path(options["token_file"]).read_text()
            except OSError as exc:
                raise CommandError(f"cannot read --token-file: {exc}") from exc
        if token is not None and not token.strip():
            raise CommandError("the token is empty")
        report = diagnose(token)
        text = json.dumps(report.as_dict(), default=str, ensure_ascii=False) if options["json"] else render_text(report)
        if token:
            text = redact(text, strip_bearer(token))  # never print the token
        self.stdout.write(text)
        if not report.ok:
            sys.exit(1)

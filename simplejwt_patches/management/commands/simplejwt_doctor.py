"""``manage.py simplejwt_doctor [--token TOKEN | --token-file PATH | -] [--json] [--auth-class PATH] [--all-claims]``.

Standard output carries the report only (``simplejwt_patches`` log records of the run are summarised
in it); bad input is a :class:`CommandError` naming the option, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from simplejwt_patches.diagnostics import describe, redact
from simplejwt_patches.doctor import diagnose, redacted_output, strip_bearer

#: A JWT is a few KiB; anything much larger is not a token (and must not be read into memory whole).
MAX_TOKEN_BYTES = 64 * 1024


def _decode_token(data: bytes, source: str) -> str:
    if len(data) > MAX_TOKEN_BYTES:
        raise CommandError(f"{source}: more than {MAX_TOKEN_BYTES} bytes; an access token is a few KiB")
    if b"\x00" in data:
        raise CommandError(f"{source}: binary data (NUL bytes), not a token")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _auth_class(path: str) -> type:
    from django.utils.module_loading import import_string
    from rest_framework_simplejwt.authentication import JWTAuthentication

    try:
        cls = import_string(path)
    except Exception as exc:  # noqa: BLE001 - ImportError, a module that fails to import, a bad path
        raise CommandError(f"--auth-class {path!r} cannot be imported: {describe(exc)[:300]}") from None
    if not isinstance(cls, type) or not issubclass(cls, JWTAuthentication):
        raise CommandError(
            f"--auth-class {path!r} is not a subclass of rest_framework_simplejwt.authentication.JWTAuthentication"
        )
    return cls


class Command(BaseCommand):
    help = (
        "Explain SimpleJWT's JWKS setup and, given a token, every check authentication runs on it, with fixes, and "
        "the answer the project's own SimpleJWT authentication classes would give. Exit status 0 when the token "
        "would be accepted (or, without a token, when the JWKS is healthy), 1 otherwise."
    )
    requires_system_checks: Any = ()  # diagnose even a project whose checks fail

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--token", help="the access token (avoid: it lands in shell history; prefer - or a file)")
        source.add_argument("--token-file", help="read the token from this file ('-' for standard input)")
        source.add_argument("stdin", nargs="?", choices=["-"], help="read the token from standard input")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--auth-class",
            help="dotted path of the JWTAuthentication subclass that judges (for views that set their own); "
            "default: the SimpleJWT classes in REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'], in order",
        )
        parser.add_argument(
            "--all-claims",
            action="store_true",
            help="print every claim (default: only the claims the doctor checks; no personal data)",
        )

    def _read_token(self, options: dict[str, Any]) -> str | None:
        if options["token_file"] == "-" or options["stdin"] == "-":
            stream = getattr(sys.stdin, "buffer", None)
            if stream is not None:
                return _decode_token(stream.read(MAX_TOKEN_BYTES + 1), "standard input")
            text = sys.stdin.read(MAX_TOKEN_BYTES + 1)
            return _decode_token(text.encode("utf-8", "surrogateescape"), "standard input")
        if options["token_file"]:
            try:
                with Path(options["token_file"]).open("rb") as handle:
                    data = handle.read(MAX_TOKEN_BYTES + 1)
            except OSError as exc:
                raise CommandError(f"cannot read --token-file: {exc.strerror or describe(exc)}") from None
            return _decode_token(data, "--token-file")
        token: str | None = options["token"]
        return token

    def handle(self, *args: Any, **options: Any) -> None:
        token = self._read_token(options)
        if token is not None and not token.strip():
            raise CommandError("the token is empty")
        auth_class = _auth_class(options["auth_class"]) if options.get("auth_class") else None
        raw = strip_bearer(token) if token else None
        try:
            report = diagnose(token, auth_class=auth_class, all_claims=bool(options.get("all_claims")))
            text = redacted_output(report, raw, as_json=bool(options["json"]))  # never print the token
        except Exception as exc:  # noqa: BLE001 - a doctor never answers with a traceback
            message = f"the doctor failed: {describe(exc)[:300]}"
            raise CommandError(redact(message, raw) if raw else message) from None
        self.stdout.write(text)
        if not report.ok:
            sys.exit(1)

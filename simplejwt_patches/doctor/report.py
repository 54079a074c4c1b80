"""The doctor's report: what it found, the text and ``--json`` renderers, redaction and log capture.

:class:`Report` is filled by :func:`simplejwt_patches.doctor.diagnose`; :func:`render_text` and
:meth:`Report.as_dict` show it; :func:`redacted_output` is what ``manage.py simplejwt_doctor``
prints: the token and its segments redacted from everything the report says, its structure never.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..conf import SCHEMA
from ..diagnostics import redact, redact_json
from .probe import JWKSProbe, next_step

__all__ = [
    "Check",
    "Report",
    "captured_logs",
    "dump",
    "jsonable",
    "redacted_output",
    "render_text",
    "short",
]


@dataclass
class Check:
    """One ✓/✗ line; ``ok=None`` is informational (not checked)."""

    name: str
    ok: bool | None
    detail: str
    fix: str | None = None


@dataclass
class Report:
    """Everything the doctor found; ``ok`` decides the exit code."""

    versions: dict[str, str | None]
    patches: dict[str, Any]
    jwks_options: dict[str, Any]
    jwks: JWKSProbe | None
    token: dict[str, Any] | None = None
    checks: list[Check] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    ok: bool = False
    auth_classes: list[str] = field(default_factory=list)  # the SimpleJWT classes that judge, in order
    findings: list[dict[str, str]] = field(default_factory=list)  # system-check warnings worth repeating
    log: list[str] = field(default_factory=list)  # WARNING+ records of simplejwt_patches during the run

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object (strict JSON: non-finite numbers and odd types become strings)."""
        jwks = None
        if self.jwks is not None:
            jwks = {
                f.name: getattr(self.jwks, f.name) for f in fields(self.jwks) if f.name not in ("payload", "failure")
            }
        return {
            "ok": self.ok,
            "versions": self.versions,
            "patches": self.patches,
            "jwks_options": jsonable(self.jwks_options),
            "jwks": jsonable(jwks),
            "auth_classes": self.auth_classes,
            "findings": self.findings,
            "token": jsonable(self.token),
            "checks": [jsonable(asdict(c)) for c in self.checks],
            "verdict": jsonable(self.verdict),
            "log": self.log,
        }


def jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as strict JSON data: NaN/inf and unknown types as strings, nesting bounded."""
    if depth > 20:
        return "<nested too deep>"
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    return str(value)


def short(value: Any, limit: int = 120) -> str:
    """``repr`` of a value from a token, bounded (tokens are attacker-controlled)."""
    try:
        text = repr(jsonable(value))
    except Exception:  # noqa: BLE001 - e.g. a str too large to convert an int
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dump(value: Any, limit: int = 2000) -> str:
    text = json.dumps(jsonable(value), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}"[:600])
        except Exception:  # noqa: BLE001 - an unformattable record
            self.lines.append(f"{record.levelname} {record.name}: <unformattable>")


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Keep ``simplejwt_patches`` log records out of the report's stream; WARNING+ are summarised."""
    logger = logging.getLogger("simplejwt_patches")
    handler = _Captured()
    saved = (logger.handlers[:], logger.propagate)
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        yield handler.lines
    finally:
        logger.handlers[:], logger.propagate = saved


def render_text(report: Report) -> str:
    """Human-readable report with ✓/✗ lines and fixes."""
    out = ["simplejwt_doctor"]
    out.append("versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()))
    p = report.patches
    out.append(f"patch set: {p['patch_set'] or 'none'} ({p['reason']}); applied={p['applied']}")
    for fid, state in p["fixers"].items():
        out.append(f"  - {fid}: {state}")
    o = report.jwks_options
    out.append(
        "JWKS client options (SIMPLE_JWT_PATCHES): "
        + ", ".join(f"{s.key}={o[s.attr]!r}" for s in SCHEMA if s.attr in o)
    )
    if report.auth_classes:
        out.append("judged by: " + ", ".join(report.auth_classes))
    for finding in report.findings:
        mark = "✗" if finding["level"] == "error" else "!"
        out.append(f"{mark} {finding['id']}: {finding['message']}")
        if finding.get("hint"):
            out.append(f"    fix: {finding['hint']}")
    j = report.jwks
    if j is None:
        out.append("JWKS: SIMPLE_JWT['JWK_URL'] is not set")
    else:
        mark = "✓" if j.ok else "✗"
        ms = f"{j.elapsed_ms:.0f} ms" if j.elapsed_ms is not None else "-"
        answer = f"HTTP {j.status}" if j.status is not None else "no response"
        out.append(f"{mark} JWKS {j.url}: {answer}, {ms}, {j.content_type or '-'}, {j.size or 0} bytes")
        if j.keys:
            out.append("  keys: " + dump([f"{k['kid']} ({k['kty']} {k['alg']}/{k['use']})" for k in j.keys], 1000))
        if j.cache_lifetime is not None:
            out.append(
                f"  cache policy: Cache-Control {j.cache_control or '(none)'!r} -> cached {j.cache_lifetime:g} s"
                + (", shared" if o.get("shared_cache") and j.shared else "")
            )
        if j.ok:
            out.append(f"  a signing key matches ALGORITHM {j.algorithm}")
        else:
            out.append(f"  problem: {j.problem}: {j.error}")
            if j.redirect_to:
                out.append(f"  redirect to: {j.redirect_to}")
            out.append(f"  fix: {next_step(j)}")
    if report.token is not None:
        out.append("token header: " + dump(report.token["header"]))
        which = "all" if report.token["claims_shown"] == "all" else "only those checked; --all-claims for all"
        out.append(f"token claims (unverified, {which}): " + dump(report.token["claims"]))
    for c in report.checks:
        mark = {True: "✓", False: "✗", None: "·"}[c.ok]
        out.append(f"{mark} {c.name}: {c.detail}")
        if c.ok is False and c.fix:
            out.append(f"    fix: {c.fix}")
    if report.verdict is not None:
        v = report.verdict
        by = f"; judged by {v['auth_class']}" if v.get("auth_class") else ""
        if v["accepted"]:
            who = v["user"] if "user_id" in v else f"user {v['user']!r}"
            out.append(f"✓ verdict: the API would answer 200 ({who}, token class {v['token_class']}{by})")
        else:
            judged = f" (judged by {v['auth_class']})" if v.get("auth_class") else ""
            out.append(f"✗ verdict: the API would answer {v['status']}: {v['reason_code']}: {v['reason']}{judged}")
            out.append(f"    body: {dump(v['detail'], 1000)}")
    if report.log:
        out.append(f"log during the run (simplejwt_patches, WARNING and above, {len(report.log)}):")
        out.extend(f"  {line}" for line in report.log[:20])
    out.append("result: " + ("OK" if report.ok else "FAILED"))
    return "\n".join(out)


def redacted_output(report: Report, raw: str | None, *, as_json: bool) -> str:
    """The report as printed, with the token and its segments redacted from everything it says.

    The structure is never redacted: the last line stays ``result: OK|FAILED`` and ``--json`` stays
    valid JSON with its keys, whatever the token text (a garbage token ``result: .`` used to turn
    the last line into ``[redacted]FAILED``). Only the keys the token itself supplied (its header
    and claims) are redacted like values.
    """
    if as_json:
        data = json.loads(json.dumps(report.as_dict(), default=str, ensure_ascii=False, allow_nan=False))
        if raw:
            data = {k: redact_json(v, raw, keys=k == "token") for k, v in data.items()}
        return json.dumps(data, ensure_ascii=False, allow_nan=False)
    text = render_text(report)
    if not raw:
        return text
    body, newline, result = text.rpartition("\n")  # render_text ends with the fixed result line
    return redact(body, raw) + newline + result

"""``simplejwt_doctor``: why is *this* token rejected? One command, the project's real settings.

The JWKS is fetched exactly as authentication fetches it (same headers, timeout, TLS, proxy and
redirect policy, via :func:`simplejwt_patches.transport.http_get`); a token is decoded without
verification, then every check authentication runs is replayed in order, each with a concrete fix,
and finally the project's own SimpleJWT authentication classes (``DEFAULT_AUTHENTICATION_CLASSES``,
in order, or ``--auth-class``) give the verdict the API would give, through ``authenticate()`` on a
real DRF ``Request``. The JWKS is fetched once per run (the verdict reuses the probe's key set);
the token is verified with ``SIMPLE_JWT['ALGORITHM']`` only, and any exception becomes a ✗ line.
Nothing here prints or returns the token or its signature.

The parts, each in its own module: :mod:`.probe` (JWKS and discovery, also used by ``check
--deploy``), :mod:`.stack` (which classes judge, how users are looked up; also used by W040),
:mod:`.token_checks` (one registered function per check), :mod:`.findings`, :mod:`.verdict` and
:mod:`.report` (the report, its text and JSON renderers, redaction, log capture).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .probe import JWKSProbe, discovery_document, discovery_issuer, issuers, probe_jwks
from .stack import configured_auth_classes, integer_user_id_field, looks_users_up, user_lookup_problem

if TYPE_CHECKING:
    from .report import Check, Report, captured_logs, redacted_output, render_text
    from .token_checks import shown_claims, strip_bearer

__all__ = [
    "Check",
    "JWKSProbe",
    "Report",
    "captured_logs",
    "configured_auth_classes",
    "diagnose",
    "discovery_document",
    "discovery_issuer",
    "integer_user_id_field",
    "issuers",
    "looks_users_up",
    "probe_jwks",
    "redacted_output",
    "render_text",
    "shown_claims",
    "strip_bearer",
    "user_lookup_problem",
]

#: Public names of the parts ``check`` never needs, imported on first use (PEP 562): importing the
#: probe or the stack (``checks.py`` does) loads neither the report nor the token checks.
_LAZY = {
    "Check": "report",
    "Report": "report",
    "captured_logs": "report",
    "redacted_output": "report",
    "render_text": "report",
    "shown_claims": "token_checks",
    "strip_bearer": "token_checks",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def diagnose(token: str | None = None, *, auth_class: type | None = None, all_claims: bool = False) -> Report:
    """Run every check against the project's real settings; ``token`` may be ``None``.

    ``auth_class`` judges instead of the SimpleJWT classes of ``DEFAULT_AUTHENTICATION_CLASSES``.
    """
    from ..conf import get_options
    from ..diagnostics import redact
    from ..patcher import status as patch_status
    from ..version import __version__
    from .findings import drop_user_lookup_finding, judges, system_findings
    from .report import Report, captured_logs
    from .stack import api_settings
    from .token_checks import run_token_checks, strip_bearer
    from .verdict import prime, verdict_of

    with captured_logs() as log:
        options = get_options()
        st = patch_status()
        s = api_settings()
        jwk_url = s.JWK_URL if isinstance(s.JWK_URL, str) and s.JWK_URL else None
        report = Report(
            versions={
                "django": _v("Django"),
                "djangorestframework": _v("djangorestframework"),
                "djangorestframework-simplejwt": _v("djangorestframework-simplejwt"),
                "pyjwt": _v("PyJWT"),
                "simplejwt-patches": __version__,
            },
            patches={
                "applied": st.applied,
                "patch_set": st.patch_set,
                "reason": st.patch_set_reason,
                "fixers": {
                    f.id: f"{f.state}: {f.reason}" + (f" [{f.selected_by}]" if f.selected_by else "") for f in st.fixers
                },
            },
            jwks_options=st.options,
            jwks=probe_jwks(jwk_url, s.ALGORITHM, options) if jwk_url else None,
        )
        classes = judges(auth_class, report)
        system_findings(report, classes)
        if token is None:
            report.ok = report.jwks is None or report.jwks.ok
        else:
            raw = strip_bearer(token)
            if report.jwks is not None and jwk_url:
                prime(report.jwks, jwk_url)
            run_token_checks(raw, report.jwks, report, classes, all_claims)
            drop_user_lookup_finding(report)
            report.verdict = verdict_of(raw, classes)
            report.ok = bool(report.verdict.get("accepted"))
    report.log = [redact(line, strip_bearer(token)) if token else line for line in log]
    return report


def _v(dist: str) -> str | None:
    from ..versions import distribution_version

    v = distribution_version(dist)
    return str(v) if v else None

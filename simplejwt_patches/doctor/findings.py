"""Findings next to the verdict: which classes judge, and the system-check warnings worth repeating.

``--auth-class``, else SimpleJWT's classes among ``DEFAULT_AUTHENTICATION_CLASSES`` (a finding when
there are none, or they cannot be imported); W020 and the other ``JWK_URL`` problems; W040, which
a token whose user id can be looked up withdraws.
"""

from __future__ import annotations

from ..diagnostics import describe
from .report import Report
from .stack import api_settings, configured_auth_classes, dotted, user_lookup_problem

__all__ = ["drop_user_lookup_finding", "judges", "system_findings"]


def judges(auth_class: type | None, report: Report) -> list[type]:
    """The classes that judge: ``--auth-class``, else SimpleJWT's in DEFAULT_AUTHENTICATION_CLASSES."""
    from rest_framework_simplejwt.authentication import JWTAuthentication

    if auth_class is not None:
        classes = [auth_class]
    else:
        try:
            classes = configured_auth_classes()
        except Exception as exc:  # noqa: BLE001 - DRF cannot import one of them
            report.findings.append(
                {
                    "id": "auth-classes",
                    "level": "error",
                    "message": "REST_FRAMEWORK["
                    f"'DEFAULT_AUTHENTICATION_CLASSES'] cannot be imported: {describe(exc)[:300]}",
                    "hint": "Fix the dotted path; the doctor judges with JWTAuthentication.",
                }
            )
            classes = []
        if not classes:
            report.findings.append(
                {
                    "id": "auth-classes",
                    "level": "warning",
                    "message": "no SimpleJWT class in "
                    "REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES']: judged with JWTAuthentication",
                    "hint": "Views that set authentication_classes: pass --auth-class dotted.path.",
                }
            )
            classes = [JWTAuthentication]
    report.auth_classes = [dotted(c) for c in classes]
    return classes


def system_findings(report: Report, classes: list[type]) -> None:
    """System-check warnings the operator should see next to the verdict (W020, W040)."""
    from ..conf import jwk_url_problems
    from ..patches.user_lookup import USER_LOOKUP_FIXES

    s = api_settings()
    if s.JWK_URL:
        for problem in jwk_url_problems(s.JWK_URL):
            report.findings.append(
                {
                    "id": f"simplejwt_patches.{problem.id}",
                    "level": "warning" if problem.id[0] == "W" else "error",
                    "message": problem.msg,
                    "hint": problem.hint or "",
                }
            )
    problem_text = user_lookup_problem(s, classes)
    if problem_text:
        report.findings.append(
            {
                "id": "simplejwt_patches.W040",
                "level": "warning",
                "message": problem_text,
                "hint": USER_LOOKUP_FIXES[0].upper() + USER_LOOKUP_FIXES[1:] + ".",
            }
        )


def drop_user_lookup_finding(report: Report) -> None:
    """With a token, W040 is judged from the token itself: its user id could be looked up."""
    if any(c.name == "user lookup" and c.ok for c in report.checks):
        report.findings[:] = [f for f in report.findings if f["id"] != "simplejwt_patches.W040"]

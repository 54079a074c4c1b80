"""Declaring settings: one :class:`Setting` per key, holding everything known about it.

A :class:`Setting` is a typed descriptor on :class:`simplejwt_patches.conf.Options`: reading the
attribute gives the validated value. Validators take the raw value and a ``report`` callback; they
return the value to use, call ``report`` for problems that still leave a usable value (a bad header
is dropped, the others kept), or raise :class:`Invalid` to fall back to the default. Every number
is finite and bounded: NaN, infinity, negative and huge values are refused with the key named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

__all__ = [
    "Invalid",
    "Problem",
    "Report",
    "Setting",
    "boolean",
    "choice",
    "integer",
    "seconds",
    "string_list",
]

T = TypeVar("T")
Report = Callable[..., None]  # report(msg, hint=None)
Validator = Callable[[Any, Report], T]

SETTING = "SIMPLE_JWT_PATCHES"


@dataclass(frozen=True)
class Problem:
    """A settings problem; ``id`` is the system check id suffix (e.g. ``E011``)."""

    id: str
    key: str
    msg: str
    hint: str | None = None


class Invalid(ValueError):
    """The value cannot be used at all; the setting falls back to its default."""

    def __init__(self, msg: str, hint: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.hint = hint


def _shown(value: Any) -> str:
    """A short ``repr`` for messages (never a whole hostile value)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


class Setting(Generic[T]):
    """One key of ``SIMPLE_JWT_PATCHES``: default, validator, check id, secrecy and doc."""

    def __init__(
        self,
        key: str,
        default: Any,
        validator: Validator[T],
        check: str,
        *,
        doc: str,
        secret: bool = False,
        render: Callable[[T, Any], Any] | None = None,
    ) -> None:
        self.key = key
        self.secret = secret
        self.default = default
        self.validator = validator
        self.check = check
        self.doc = doc
        self.render = render
        self.attr = key.lower()

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Setting[T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Setting[T] | T:
        if obj is None:
            return self
        return obj._values[self.key]  # type: ignore[attr-defined,no-any-return]

    def fallback(self) -> T:
        """The validated default."""
        return self.validator(self.default, lambda *a, **k: None)

    def validate(self, raw: Any, problems: list[Problem], *, present: bool = True) -> T:
        """The value to use for ``raw``; problems are appended, naming the key and the check id."""

        def report(msg: str, hint: str | None = None) -> None:
            problems.append(Problem(self.check, self.key, f"{SETTING}['{self.key}']: {msg}", hint))

        try:
            return self.validator(raw, report)
        except Invalid as exc:
            report(exc.msg, exc.hint)
        except Exception as exc:  # noqa: BLE001 - a hostile value must not break startup
            report(f"cannot be used ({type(exc).__name__}).")
        return self.fallback()

    def show(self, options: Any) -> Any:
        """The value as ``status()`` and the doctor show it (``render`` masks secret values)."""
        value = self.__get__(options)
        return self.render(value, options) if self.render is not None else value


def seconds(*, zero: bool = False, maximum: float) -> Validator[float]:
    """A finite number of seconds in ``(0, maximum]`` (``[0, maximum]`` with ``zero``)."""

    def validate(value: Any, report: Report) -> float:
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value > 0 or (zero and value == 0))
            and value <= maximum
        )
        if not ok:
            low = ">= 0" if zero else "> 0"
            raise Invalid(f"must be a finite number of seconds {low} and <= {maximum:g}, got {_shown(value)}.")
        return float(value)

    return validate


def integer(*, minimum: int, maximum: int) -> Validator[int]:
    """A whole number in ``[minimum, maximum]``."""

    def validate(value: Any, report: Report) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise Invalid(f"must be a whole number from {minimum} to {maximum}, got {_shown(value)}.")
        return int(value)

    return validate


def boolean(value: Any, report: Report) -> bool:
    """``True`` or ``False``."""
    if not isinstance(value, bool):
        raise Invalid(f"must be True or False, got {_shown(value)}.")
    return value


def choice(*allowed: Any) -> Validator[Any]:
    """One of ``allowed`` (booleans never pass for numbers)."""

    def validate(value: Any, report: Report) -> Any:
        if isinstance(value, bool) or not any(type(value) is type(a) and value == a for a in allowed):
            raise Invalid(f"must be one of {', '.join(map(repr, allowed))}, got {_shown(value)}.")
        return value

    return validate


def string_list(value: Any, report: Report) -> tuple[str, ...]:
    """A list, tuple or set of strings (a lone string is refused: it is not a list of one)."""
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise Invalid(f"must be a list of strings, got {_shown(value)}.")
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise Invalid(f"must be a list of strings; {_shown(bad[0])} is not a string.")
    return tuple(value)

"""The reasoned refusals of the key lookup: each error says why no key answers, chained to the cause
(the last fetch's failure when there was one), in the PyJWT error types the callers already handle."""

from __future__ import annotations

from .conf import Options
from .diagnostics import describe, root_cause
from .failures import JWKSFailure
from .refetch import FailureMemory
from .transport import errors

__all__ = ["connection_error", "refresh_timed_out", "tried_recently", "unknown_kid"]


def connection_error(message: str) -> BaseException:
    """PyJWT's "could not fetch" error (``PyJWKClientConnectionError`` where it exists)."""
    return errors()[0](message)


def unknown_kid(kid: str, last_error: BaseException | None = None) -> BaseException:
    """The unknown-kid error; chained to the last refresh's failure when it failed (the real cause)."""
    import jwt

    error = jwt.PyJWKClientError(f'Unable to find a signing key that matches: "{kid[:100]}"')
    if last_error is not None:
        error.__cause__ = last_error
        return error
    error.__cause__ = JWKSFailure("unknown_kid", "no key in the current key set has this kid")
    return error


def refresh_timed_out(options: Options) -> BaseException:
    """A refresh in flight did not finish within what was left of this request's ``JWKS_TIMEOUT``."""
    error = connection_error(f"a JWKS refresh in progress did not finish within JWKS_TIMEOUT={options.timeout:g} s")
    error.__cause__ = JWKSFailure("timeout", "waited JWKS_TIMEOUT for a refresh in progress")
    error.__suppress_context__ = True  # as ``raise ... from``
    return error


def tried_recently(memory: FailureMemory, now: float, options: Options) -> BaseException:
    """The last attempt failed less than ``JWKS_REFETCH_COOLDOWN`` ago: its failure, not a new fetch."""
    last = memory.error
    ago = now - (memory.attempt or now)
    reason = describe(root_cause(last)) if last is not None else "unknown"
    error = connection_error(
        f'Fail to fetch data from the url, err: "{reason}" (last attempt {ago:.0f} s ago; '
        f"not retried before JWKS_REFETCH_COOLDOWN={options.refetch_cooldown:g} s)"
    )
    error.__cause__ = last
    return error

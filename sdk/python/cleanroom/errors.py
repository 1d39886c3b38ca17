"""Errors raised by the cleanroom SDK.

Every error the server answers with becomes a :class:`CleanroomError`
subclass carrying the server's stable ``code`` and its message, which is
safe to show and, where the user can fix the cause, says how. The codes
are the server's: ``invalid``, ``unauthorized``, ``forbidden``,
``not_found``, ``conflict``, ``too_large`` and ``internal``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Type

if TYPE_CHECKING:  # pragma: no cover
    from .analytics import Job


class CleanroomError(Exception):
    """Base class of every error of the SDK.

    ``code`` is a stable machine-readable string; ``message`` is the
    human-readable explanation (for API errors, the server's own words).
    """

    code: str = "internal"

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidError(CleanroomError):
    """The request is malformed, e.g. a definition that breaks a rule."""

    code = "invalid"


class UnauthorizedError(CleanroomError):
    """The API token is missing, unknown, or belongs to another email."""

    code = "unauthorized"


class ForbiddenError(CleanroomError):
    """The user takes part in the clean room but lacks the right for this."""

    code = "forbidden"


class NotFoundError(CleanroomError):
    """No such object, or the user is not a participant (the server does
    not tell strangers which clean rooms exist)."""

    code = "not_found"


class ConflictError(CleanroomError):
    """The object is not in a state that allows this, e.g. running a
    computation whose required dataset is missing."""

    code = "conflict"


class TooLargeError(CleanroomError):
    """The request is larger than the server accepts."""

    code = "too_large"


class InternalError(CleanroomError):
    """The server failed; its log has the details."""

    code = "internal"


class UnreachableError(CleanroomError):
    """The server could not be reached or cut the connection."""

    code = "unreachable"


class IntegrityError(CleanroomError):
    """Something does not match what it must match: a ciphertext that does
    not authenticate, a sealed key that does not open, or a server that
    answers with a clean room id or hash other than the one computed here."""

    code = "integrity"


class EnclaveNotTrusted(CleanroomError):
    """The server's enclave does not match the trusted enclave
    specifications, so no dataset key is sealed to it."""

    code = "untrusted_enclave"


class JobFailed(CleanroomError):
    """A computation ended without a result. The message is the job's own
    reason (a limit it hit, its exit status, and the last line of its logs
    where the node's log policy releases them); ``job`` is the ended job and
    ``code`` its state, ``failed`` or ``cancelled``."""

    def __init__(self, job: "Job") -> None:
        super().__init__(job.error or f"job {job.id} {job.state}", code=job.state)
        self.job = job


_BY_CODE: Dict[str, Type[CleanroomError]] = {
    cls.code: cls
    for cls in (InvalidError, UnauthorizedError, ForbiddenError, NotFoundError,
                ConflictError, TooLargeError, InternalError)
}

# Statuses of responses without a JSON error body (a proxy's, say), mapped
# back to codes as the server's table maps codes to statuses.
_CODE_BY_STATUS = {400: "invalid", 401: "unauthorized", 403: "forbidden",
                   404: "not_found", 409: "conflict", 413: "too_large"}


def error_from_code(code: str, message: str) -> CleanroomError:
    """Return the error for a server error code; unknown codes keep their
    code on a plain :class:`CleanroomError`."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return CleanroomError(message, code=code)
    return cls(message)


def error_from_status(status: int, message: str) -> CleanroomError:
    """Return the error for an HTTP status that came without an error body."""
    return error_from_code(_CODE_BY_STATUS.get(status, "internal"), message)

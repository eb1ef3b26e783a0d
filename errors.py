"""Errors a person can act on: what went wrong, and what to do next.

Three families, by what the caller should do (see ../shared/style.md):
- ``BadInput``: the input is wrong; HTTP 4xx, exit code 2, never retried.
- ``DependencyDown``: Redis, the object store or SMTP is away; HTTP 503, retried with backoff.
- anything else is a bug: HTTP 500 with a reference that is logged.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    ok = 0
    error = 1
    bad_input = 2
    dependency_down = 3
    rescan = 4  # imaging scan: the service asks for a page to be scanned again
    pending = 5  # imaging scan: not read within --wait; the scan goes on without us
    interrupted = 130


class ImagingError(Exception):
    """Base of every error this service raises on purpose."""

    http_status = 500
    exit_code = ExitCode.error
    error = "internal_error"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(ImagingError):
    """The request, file or setting is wrong; retrying the same thing will fail the same way."""

    http_status = 422
    exit_code = ExitCode.bad_input
    error = "bad_input"


class ConfigError(BadInput):
    """A setting is missing or malformed; the message names the environment variable."""

    error = "bad_setting"


class NotFound(BadInput):
    """The thing asked for does not exist (or the caller may not know that it does)."""

    http_status = 404
    error = "not_found"


class CorruptObject(ImagingError):
    """A stored object no longer matches its recorded SHA-256: restore it from a backup."""

    error = "corrupt_object"


class DependencyDown(ImagingError):
    """An outside service is unreachable; the same call may succeed later."""

    http_status = 503
    exit_code = ExitCode.dependency_down
    error = "dependency_down"
    retryable = True


class StorageUnavailable(DependencyDown):
    """The object store did not answer or refused the operation for a transient reason."""

    error = "storage_unavailable"


class QueueUnavailable(DependencyDown):
    """Redis did not answer, so no job can be queued or looked up."""

    error = "queue_unavailable"


class MailUnavailable(DependencyDown):
    """The SMTP server did not answer or refused the message for a transient reason."""

    error = "mail_unavailable"


class DirectoryUnavailable(DependencyDown):
    """The staff directory (LDAP) did not answer in time, failed TLS or refused the service account."""

    error = "directory_unavailable"

"""The package's typed errors.

Every error a user meets from this provider is a `JobStatusError`. Messages name the service, the
operation, the HTTP status and a redacted URL, and end with what the user can do. They never
contain a credential: they are built from already-redacted parts, and the HTTP core scrubs every
registered secret from them once more before raising.

Each class says whether it is **permanent** (``permanent``): no retry of the same request can fix
it, so a wait ends at once instead of counting it towards ``max_consecutive_errors``. `is_permanent`
is the one place that reads it; everything else asks it.
"""

from __future__ import annotations

from typing import ClassVar

from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException


class JobStatusError(AirflowException):
    """Base class of every error raised by airflow-jobstatus."""

    hint: str = ""
    permanent: ClassVar[bool] = False
    """True when retrying cannot help: a wait ends at once. False: a transient failure, retried."""
    not_processed: ClassVar[bool] = False
    """The service says it did not act on the request, so even a submission (POST) may be resent."""

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        operation: str | None = None,
        status_code: int | None = None,
        url: str | None = None,
        hint: str | None = None,
        job_id: str | None = None,
    ) -> None:
        self.service = service
        self.operation = operation
        self.http_status = status_code
        self.url = url
        self.job_id = job_id
        if hint is not None:
            self.hint = hint
        super().__init__(self._format(message))

    def _format(self, message: str) -> str:
        where = []
        if self.service:
            where.append(self.service)
        if self.operation:
            where.append(self.operation)
        prefix = ": ".join(where)
        parts = [f"{prefix}: {message}" if prefix else message]
        if self.job_id:
            parts.append(f"(job {self.job_id})")
        if self.http_status is not None or self.url:
            req = f"HTTP {self.http_status}" if self.http_status is not None else "no HTTP response"
            if self.url:
                req += f" from {self.url}"
            parts.append(f"[{req}]")
        text = " ".join(parts)
        if self.hint:
            text += f". {self.hint}"
        return text


class InvalidParameterError(JobStatusError, ValueError):
    """A parameter or connection setting is wrong; nothing was sent."""

    hint = "Fix the parameter named above and run the task again"
    permanent = True


class AuthenticationError(JobStatusError):
    """401/403: the credentials were missing, wrong, expired or revoked."""

    hint = "Check the credentials in the Airflow connection (they may be wrong, expired or revoked)"
    permanent = True


class NotFoundError(JobStatusError):
    """404: the job (or document) does not exist for these credentials."""

    hint = (
        "Check the job id, that the job belongs to the account of this connection, "
        "and that the connection's base URL is right"
    )
    permanent = True


class BadRequestError(JobStatusError):
    """400 and other 4xx the service refuses for good; retrying cannot help."""

    hint = "The service refused the request as sent; check the parameters named in its message"
    permanent = True


class RateLimitedError(JobStatusError):
    """429 still returned after the retries allowed."""

    hint = "Lower 'max_requests_per_second' in the connection, raise poll intervals, or retry later"
    permanent = False  # retried after its Retry-After
    not_processed = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ConcurrencyLimitError(RateLimitedError):
    """The account runs as many jobs as the service allows at once; a submission is refused until
    some end (Symbl.ai's 429 on submit). Not a request-rate problem: waiting minutes, not seconds,
    and submitting again is the remedy (the Symbl submit operator does it)."""

    hint = (
        "Wait for some of the account's jobs to end and submit again, or raise the operator's "
        "concurrency_wait_timeout; the service can raise the limit on request"
    )

    @classmethod
    def like(cls, exc: RateLimitedError) -> ConcurrencyLimitError:
        """The same error (message, status, URL, hint) as a 429 the service sent at its job limit."""
        limited = cls.__new__(cls)
        limited.__dict__.update(exc.__dict__)
        limited.args = exc.args
        return limited


class RequestBudgetExhaustedError(RateLimitedError):
    """The connection's own per-day request budget (``max_requests_per_day``) is spent: nothing was sent.

    Waits (sensors, deferred tasks) do not count it as a failed check: they hold until the budget
    refills (``retry_after`` seconds). A submission fails with it (retry the task later); with shared
    budgets (``[jobstatus] redis_url``) a submit operator first waits for the budget, up to its timeout.
    """

    permanent = False  # the budget refills: waits hold, they do not end
    hint = (
        "Waits hold until the budget refills; if the service's plan allows more requests, raise "
        "'max_requests_per_day' in the connection's extra"
    )


class ServiceError(JobStatusError):
    """5xx still returned after the retries allowed."""

    hint = "The service is failing; retry later or check its status page"
    permanent = False


class ServiceUnreachableError(ServiceError):
    """No HTTP response: connection refused or reset, DNS failure, or timeouts, after retries."""

    hint = (
        "Check the connection's base URL and the network path to the service; "
        "raise 'request_timeout' if responses are slow"
    )


class MalformedResponseError(JobStatusError):
    """The service answered with something that is not its documented shape (or is too large)."""

    hint = "The service's response did not match its documented contract; report it if it persists"
    permanent = False  # may be a passing glitch


class JobFailedError(JobStatusError):
    """The job reached a failure state at the service."""

    hint = "See the service's error message above; fix the input and submit a new job"
    permanent = True  # a failed job stays failed


class JobNotFinishedError(JobStatusError):
    """An operation needs a finished job, and the job is not finished."""

    hint = "Wait for the job (e.g. with the service's sensor) before moving its outputs"
    permanent = False  # waiting fixes it


PERMANENT_ERRORS: tuple[type[JobStatusError], ...] = tuple(
    cls
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, JobStatusError) and cls.permanent
)
"""This module's permanent error classes (the typed errors a trigger's ``error`` event can name)."""


def is_permanent(exc: BaseException) -> bool:
    """Errors no retry can fix: they end a wait at once (a missing connection is one of them)."""
    if isinstance(exc, JobStatusError):
        return exc.permanent
    return isinstance(exc, AirflowNotFoundException)


def permanent_type(exc: BaseException) -> str | None:
    """The name of the permanent error class of this module ``exc`` is (None for anything else)."""
    if not is_permanent(exc):
        return None
    return next((cls.__name__ for cls in type(exc).__mro__ if cls in PERMANENT_ERRORS), None)


def error_class_for_status(status: int) -> type[JobStatusError]:
    """The error an HTTP error status is: the one place statuses are classified.

    The client retries what is not `permanent` (a POST only when `not_processed`), and the waits
    end or count failures by the same flag. 408 (the server timed out reading) and 5xx are the
    service failing; 425 (too early) and 429 were refused unprocessed.
    """
    if status in (401, 403):
        return AuthenticationError
    if status == 404:
        return NotFoundError
    if status in (425, 429):
        return RateLimitedError
    if status == 408 or status >= 500:
        return ServiceError
    return BadRequestError

"""`SymblSubmitJobOperator`: submit audio, video or text to Symbl.ai's Async API and wait for it."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, cast

from airflow.sdk import Context

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.operators.base import JobSubmitOperator, as_seconds
from airflow_jobstatus.operators.resubmit import BACKOFF_INITIAL, BACKOFF_MAX, submit_while_limited
from airflow_jobstatus.push.submit import fill_push_webhook
from airflow_jobstatus.services.symbl import SYMBL

DEFAULT_CONCURRENCY_WAIT = 3600.0
"""Seconds the operator keeps submitting again while the account is at its concurrent-job limit."""


class SymblSubmitJobOperator(JobSubmitOperator):
    """Submit to Symbl.ai's Async API and, by default, wait for the job.

    See `JobSubmitOperator` for waiting, retries (a retry resumes the recorded job) and what it returns.
    The job id is ``"<jobId>:<conversationId>"`` (the conversation holds the outputs).

    :param concurrency_wait_timeout: seconds (or a timedelta) to keep submitting again while Symbl.ai
        answers 429 because the account runs its maximum number of concurrent jobs. The operator
        waits 15 s, doubling up to 5 minutes between attempts, and logs each wait with the reason;
        past this bound (or the ``timeout``) the task fails with `ConcurrencyLimitError`. Default
        1 hour. With ``[jobstatus] redis_url`` set, a submission first waits (as long) for a free
        slot under the connection's ``max_concurrent_jobs``, shared by every worker (README).

    Its other parameters are the fields of `SymblSubmitRequest` (dicts and lists given as JSON text,
    and ``"true"``/``"false"`` and digits rendered by templates, are accepted too):
    """

    spec = SYMBL
    hook_class = SymblHook
    #: the backoff between submissions refused at the concurrency limit (seconds)
    concurrency_backoff_initial: float = BACKOFF_INITIAL
    concurrency_backoff_max: float = BACKOFF_MAX

    def __init__(
        self, *, concurrency_wait_timeout: float | timedelta = DEFAULT_CONCURRENCY_WAIT, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.concurrency_wait_timeout = as_seconds(concurrency_wait_timeout, "concurrency_wait_timeout")
        if self.concurrency_wait_timeout < 0:
            raise InvalidParameterError(
                f"concurrency_wait_timeout must not be negative, got {concurrency_wait_timeout!r}",
                service=SYMBL.display_name,
            )

    def _send(self, submit_kwargs: dict[str, Any], context: Context) -> str:
        """Submit; while the account is at its concurrent-job limit, wait and submit again."""
        hook = cast(SymblHook, self.hook)
        fields = fill_push_webhook(submit_kwargs["request"], self.spec, hook).model_dump()  # push completion
        limit = self.concurrency_wait_timeout
        if self._deadline:
            limit = min(limit, max(0.0, self._deadline - time.time()))
        return submit_while_limited(
            lambda: hook.submit_job(**fields),
            limit_seconds=limit,
            log=self.log,
            service=self.spec.display_name,
            initial=self.concurrency_backoff_initial,
            maximum=self.concurrency_backoff_max,
        )

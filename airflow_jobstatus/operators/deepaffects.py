"""`DeepAffectsSubmitJobOperator`: submit a DeepAffects async ASR or diarization request and wait for it."""

from __future__ import annotations

import uuid
from typing import Any, cast

from airflow.sdk import Context

from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook
from airflow_jobstatus.operators.base import InvalidSubmissionError, JobSubmitOperator
from airflow_jobstatus.push.submit import fill_push_webhook
from airflow_jobstatus.services.deepaffects import DEEPAFFECTS, DeepAffectsSubmitRequest


def new_request_id() -> str:
    """A ``request_id`` for one submission: new every time, never derived from the task instance.

    The DeepAffects docs show ``request_id`` as an optional query parameter and do not say what
    re-sending one does, so an id is never sent twice: a rerun gets a new job, not an earlier
    result. It is logged before the request, so a job whose id never reached the task state store
    (the worker died in between) can still be found.
    """
    return str(uuid.uuid4())


class DeepAffectsSubmitJobOperator(JobSubmitOperator):
    """Submit a DeepAffects async request (``asr`` or ``diarize``) and, by default, wait for it.

    See `JobSubmitOperator` for waiting, retries (a retry resumes the recorded job), clears (a new
    job) and what it returns. Every submission sends a new ``request_id`` (logged before the
    request). Its parameters are the fields of `DeepAffectsSubmitRequest` but ``request_id``:
    """

    spec = DEEPAFFECTS
    hook_class = DeepAffectsHook

    def _send(self, submit_kwargs: dict[str, Any], context: Context) -> str:
        request = cast(DeepAffectsSubmitRequest, submit_kwargs["request"])
        webhook = fill_push_webhook(request, self.spec, self.hook).webhook
        if not webhook:
            raise InvalidSubmissionError(
                "webhook is required for DeepAffects async requests: pass webhook= with the http(s) URL "
                "DeepAffects should POST the result to, or configure push completion ([jobstatus] "
                "webhook_base_url and the connection's webhook_token; README 'Push completion')"
            )
        request_id = new_request_id()
        self.log.info("Submitting DeepAffects request_id %s", request_id)
        # not validated again: the push URL is this provider's own, and its token stays out of errors
        sent = request.model_copy(update={"webhook": webhook, "request_id": request_id})
        return str(cast(Any, self.hook).submit_job(request=sent))

"""`DeepAffectsSubmitJobOperator`: submit a DeepAffects async ASR or diarization request and wait for it."""

from airflow_jobstatus.operators.base import JobSubmitOperator
from airflow_jobstatus.services.deepaffects import DEEPAFFECTS


class DeepAffectsSubmitJobOperator(JobSubmitOperator):
    """Submit a DeepAffects async request (``asr`` or ``diarize``) and, by default, wait for it.

    See `JobSubmitOperator` for waiting, retries (a retry resumes the recorded job), clears (a new
    job) and what it returns. Every submission sends a new ``request_id`` (logged before the
    request). Its parameters are the fields of `DeepAffectsSubmitRequest` but ``request_id``:
    """

    spec = DEEPAFFECTS

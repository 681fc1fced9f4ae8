"""`SymblSubmitJobOperator`: submit audio, video or text to Symbl.ai's Async API and wait for it."""

from airflow_jobstatus.operators.base import JobSubmitOperator
from airflow_jobstatus.services.symbl import SYMBL


class SymblSubmitJobOperator(JobSubmitOperator):
    """Submit to Symbl.ai's Async API and, by default, wait for the job.

    See `JobSubmitOperator` for waiting, retries (a retry resumes the recorded job) and what it returns.
    The job id is ``"<jobId>:<conversationId>"`` (the conversation holds the outputs). Its parameters
    are the fields of `SymblSubmitRequest` (dicts and lists given as JSON text, and ``"true"``/``"false"``
    and digits rendered by templates, are accepted too) and ``concurrency_wait_timeout``:
    """

    spec = SYMBL

"""`SymblHook`: the Symbl.ai description (services/symbl.py) run by the generic hook."""

from airflow_jobstatus.hooks.base import JobServiceHook
from airflow_jobstatus.services.symbl import SYMBL


class SymblHook(JobServiceHook):
    """Symbl.ai Async, Job and Conversation APIs: submit (a `SymblSubmitRequest` or its fields), job status.

    :param symbl_conn_id: a ``symbl`` connection (login = App ID, password = App secret).

    `submit_job` returns ``"<jobId>:<conversationId>"`` (the conversation holds the outputs); every method
    takes that or a bare ``jobId`` (no outputs then). A 429 on submit (the account's concurrent-job limit)
    raises `ConcurrencyLimitError`; `SymblSubmitJobOperator` waits and submits again.
    """

    spec = SYMBL

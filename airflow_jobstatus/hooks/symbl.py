"""`SymblHook`: the Symbl.ai description (services/symbl.py) plus its job references and 429.

Symbl's job status answers only ``{id, status}``, while the outputs live under the conversation:
`SymblHook.submit_job` returns ``"<jobId>:<conversationId>"``, and every method accepts that form
or a bare ``jobId`` (then no outputs can be listed).
"""

from __future__ import annotations

from typing import Any, cast

from airflow_jobstatus.hooks.base import JobServiceHook, Plan
from airflow_jobstatus.http.auth import RefreshableTokenAuth
from airflow_jobstatus.http.tokens import ExchangedToken
from airflow_jobstatus.services.symbl import SYMBL


class SymblHook(JobServiceHook):
    """Symbl.ai Async, Job and Conversation APIs: submit (a `SymblSubmitRequest` or its fields), job status.

    :param symbl_conn_id: a ``symbl`` connection (login = App ID, password = App secret).

    A 429 on submit (the account's concurrent-job limit) raises `ConcurrencyLimitError`;
    `SymblSubmitJobOperator` waits and submits again.
    """

    spec = SYMBL
    conn_name_attr = "symbl_conn_id"
    default_conn_name = SYMBL.default_conn_id
    conn_type = SYMBL.conn_type
    hook_name = SYMBL.display_name

    def __init__(self, symbl_conn_id: str = SYMBL.default_conn_id, **kwargs: Any) -> None:
        super().__init__(symbl_conn_id, **kwargs)

    @property
    def token_source(self) -> ExchangedToken:
        """The bearer token shared by every hook of this API and App ID in the process."""
        return cast(ExchangedToken, cast(RefreshableTokenAuth, self.get_client().auth).source)

    def _test_connection(self) -> Plan[str]:
        yield self.token_source.call()
        return "Connected to Symbl.ai: the App ID and secret were exchanged for a token"

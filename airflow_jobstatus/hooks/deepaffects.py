"""`DeepAffectsHook`: the DeepAffects description (services/deepaffects.py) run by the generic hook."""

from __future__ import annotations

from airflow_jobstatus.hooks.base import JobServiceHook
from airflow_jobstatus.services.deepaffects import DEEPAFFECTS


class DeepAffectsHook(JobServiceHook):
    """DeepAffects async ASR and diarization: submit (a `DeepAffectsSubmitRequest` or its fields;
    ``webhook`` is required when sending), and the transaction status, whose result is inline.

    :param deepaffects_conn_id: a ``deepaffects`` connection (password = API key).
    """

    spec = DEEPAFFECTS
    conn_name_attr = "deepaffects_conn_id"
    default_conn_name = DEEPAFFECTS.default_conn_id
    conn_type = DEEPAFFECTS.conn_type
    hook_name = DEEPAFFECTS.display_name

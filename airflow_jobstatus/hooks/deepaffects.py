"""`DeepAffectsHook`: the DeepAffects description (services/deepaffects.py) run by the generic hook."""

from airflow_jobstatus.hooks.base import JobServiceHook
from airflow_jobstatus.services.deepaffects import DEEPAFFECTS


class DeepAffectsHook(JobServiceHook):
    """DeepAffects async ASR and diarization: submit (``webhook`` required when sending) and the
    transaction status, whose result is inline.

    :param deepaffects_conn_id: a ``deepaffects`` connection (password = API key).
    """

    spec = DEEPAFFECTS

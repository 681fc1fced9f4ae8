"""The submit operators the generated test DAGs use, and variants whose first try dies at a chosen
point (as a worker that crashed there), so that the retry's resume can be checked."""

from __future__ import annotations

from typing import Any

from airflow_jobstatus.operators.daily import DailySubmitJobOperator
from airflow_jobstatus.operators.deepaffects import DeepAffectsSubmitJobOperator
from airflow_jobstatus.operators.symbl import SymblSubmitJobOperator
from airflow_jobstatus.operators.wasabi import WasabiAirSubmitJobOperator

OPERATORS: dict[str, tuple[type, str]] = {
    "daily": (DailySubmitJobOperator, "daily_conn_id"),
    "wasabi_air": (WasabiAirSubmitJobOperator, "wasabi_air_conn_id"),
    "symbl": (SymblSubmitJobOperator, "symbl_conn_id"),
    "deepaffects": (DeepAffectsSubmitJobOperator, "deepaffects_conn_id"),
}
"""Connection type -> (submit operator, its connection argument)."""


class CrashAfterRecordingMixin:
    """The first try dies right after the job id was stored (as a worker that crashed there)."""

    def poll_until_complete(self, external_id: Any, context: Any) -> Any:
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated crash after submitting job " + external_id["job_id"])
        return super().poll_until_complete(external_id, context)


class CrashBeforeRecordingMixin:
    """The first try dies after the service accepted the job, before its id reached the state store."""

    def submit_job(self, context: Any) -> Any:
        record = super().submit_job(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated crash before recording job " + record["job_id"])
        return record


class CrashAfterRecordingDaily(CrashAfterRecordingMixin, DailySubmitJobOperator):
    pass


class CrashBeforeRecordingDeepAffects(CrashBeforeRecordingMixin, DeepAffectsSubmitJobOperator):
    pass

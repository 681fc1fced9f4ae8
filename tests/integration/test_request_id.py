"""DeepAffects submissions are never resent on the strength of a ``request_id``.

The DeepAffects docs show ``request_id`` as an optional query parameter and do not say that
re-sending one returns the same job, so a submit POST that may have been processed (a 5xx answer)
is not retried, ``request_id`` or not: a second POST could be a second, billable job.
"""

from __future__ import annotations

import pytest

from airflow_jobstatus.exceptions import JobStatusError
from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook

pytestmark = pytest.mark.integration


def test_a_submit_that_may_have_been_processed_is_sent_once(make_connection, jobstatus_emulator) -> None:
    conn_id, credential = make_connection("deepaffects")
    fault = jobstatus_emulator.add_fault(
        service="deepaffects", credential=credential, kind="status", status=502, route="/async/asr", count=1
    )
    try:
        with pytest.raises(JobStatusError, match="502"):
            DeepAffectsHook(deepaffects_conn_id=conn_id).submit_job(
                "asr",
                url="https://media.example/a.wav",
                webhook="https://hooks.example/deepaffects",
                request_id="rerun-safe-1",
            )
    finally:
        jobstatus_emulator.delete_fault(fault)
    rows = jobstatus_emulator.stats(service="deepaffects", credential=credential)["requests"]
    assert sum(r["count"] for r in rows if r["method"] == "POST") == 1, rows

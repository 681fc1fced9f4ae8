"""DAG for tests/e2e/test_triggerer_handoff.py: a deferred Daily submission with ``delete_on_kill``.

The job's media URI comes from the run's conf (the test makes it last until it shortens it); the
connection ``handoff_daily`` is an ``AIRFLOW_CONN_*`` variable the test sets on every process.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_jobstatus.operators.daily import DailySubmitJobOperator

with DAG("jobstatus_handoff", schedule=None, catchup=False, tags=["jobstatus-e2e"]) as dag:
    DailySubmitJobOperator(
        task_id="submit",
        preset="transcript",
        uri="{{ dag_run.conf['uri'] }}",
        daily_conn_id="handoff_daily",
        deferrable=True,
        poll_interval=2,
        timeout=900,
        delete_on_kill=True,
    )

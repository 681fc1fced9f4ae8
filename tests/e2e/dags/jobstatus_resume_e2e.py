"""Used by tests/e2e/test_resume_e2e.py: one deferrable Daily submit task, cleared through the REST API."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_jobstatus.operators.daily import DailySubmitJobOperator

with DAG(
    "jobstatus_e2e_resume",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["airflow-jobstatus", "e2e"],
):
    DailySubmitJobOperator(
        task_id="submit",
        daily_conn_id="daily_resume",
        preset="transcript",
        # the first try's job runs for dag_run.conf["seconds"], a later try's for 2 s
        uri="https://media.example/resume.mp4?emu_duration="
        "{{ dag_run.conf['seconds'] if ti.try_number == 1 else 2 }}",
        deferrable=True,
        poll_interval=1,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

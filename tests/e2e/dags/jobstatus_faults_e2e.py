"""DAGs for tests/e2e/test_process_faults.py: process faults on real Airflow processes.

* ``jobstatus_faults_triggerer``: one mapped deferrable sensor per service over the job ids in the
  run's conf (``{"daily": [...], "wasabi_air": [...], ...}``): 100 waits deferred at once, while
  the test SIGKILLs the triggerer and starts a new one.
* ``jobstatus_faults_transfer``: a finished Daily job's outputs (one of them large) moved to a
  local folder, then to an S3 bucket, each with one retry: the test SIGKILLs the task's process
  in the middle of each copy.
* ``jobstatus_faults_restart``: one deferrable sensor per service on a dedicated emulator (the
  ``restart_*`` connections) that the test kills and restarts mid-wait; ``max_consecutive_errors``
  is high enough for the sensors to ride out the outage.

Connections (``faults_*``, ``restart_*``, ``faults_s3``) are ``AIRFLOW_CONN_*`` variables the
test sets on every Airflow process.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task

from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator
from airflow_jobstatus.sensors.daily import DailyJobSensor
from airflow_jobstatus.sensors.deepaffects import DeepAffectsJobSensor
from airflow_jobstatus.sensors.symbl import SymblJobSensor
from airflow_jobstatus.sensors.wasabi import WasabiAirJobSensor

SENSORS = {
    "daily": (DailyJobSensor, "daily_conn_id"),
    "wasabi_air": (WasabiAirJobSensor, "wasabi_air_conn_id"),
    "symbl": (SymblJobSensor, "symbl_conn_id"),
    "deepaffects": (DeepAffectsJobSensor, "deepaffects_conn_id"),
}
RESTART_POLL_INTERVAL = 2
"""Seconds between polls of the restart DAG's sensors (the test sizes the outage from it)."""
RESTART_MAX_ERRORS = 30
"""Failed polls in a row the restart DAG's sensors tolerate: far more than the outage causes."""


@task
def job_ids(service: str, **context: object) -> list[str]:
    """The run's job ids for one service (what the mapped sensor expands over)."""
    return list(context["dag_run"].conf[service])  # type: ignore[attr-defined]


with DAG(
    "jobstatus_faults_triggerer",
    schedule=None,
    catchup=False,
    max_active_tasks=256,  # every mapped sensor defers at once
    tags=["jobstatus-e2e"],
) as triggerer_dag:
    for service, (sensor, conn_kw) in SENSORS.items():
        sensor.partial(
            task_id=f"wait_{service}",
            deferrable=True,
            poll_interval=5,
            timeout=1800,
            **{conn_kw: f"faults_{service}"},
        ).expand(job_id=job_ids.override(task_id=f"ids_{service}")(service))


with DAG("jobstatus_faults_transfer", schedule=None, catchup=False, tags=["jobstatus-e2e"]) as transfer_dag:
    retry = {"retries": 1, "retry_delay": timedelta(seconds=2)}
    to_folder = JobOutputsToStorageOperator(
        task_id="deliver_folder",
        job_conn_id="faults_daily",
        job_id="{{ dag_run.conf['job_id'] }}",
        destination="{{ dag_run.conf['folder'] }}",
        **retry,
    )
    to_bucket = JobOutputsToStorageOperator(
        task_id="deliver_bucket",
        job_conn_id="faults_daily",
        job_id="{{ dag_run.conf['job_id'] }}",
        destination="{{ dag_run.conf['bucket_uri'] }}",
        destination_conn_id="faults_s3",
        **retry,
    )
    to_folder >> to_bucket


with DAG("jobstatus_faults_restart", schedule=None, catchup=False, tags=["jobstatus-e2e"]) as restart_dag:
    for service, (sensor, conn_kw) in SENSORS.items():
        sensor(
            task_id=f"wait_{service}",
            job_id=f"{{{{ dag_run.conf['{service}'] }}}}",
            deferrable=True,
            poll_interval=RESTART_POLL_INTERVAL,
            max_consecutive_errors=RESTART_MAX_ERRORS,
            timeout=600,
            **{conn_kw: f"restart_{service}"},
        )

"""DAGs for tests/e2e/test_scale_out.py: one per service, each run waiting on one emulator job.

The test starts 50 runs across these four DAGs at once, so each DAG allows that many active runs
and tasks (Airflow's defaults are 16). Each sensor is deferrable and reads its service's scale-out
connection (``jobstatus_scale_<service>``), which the test defines as ``AIRFLOW_CONN_*`` variables
pointing at the emulator. The job id comes from the DAG run's conf.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_jobstatus.sensors.daily import DailyJobSensor
from airflow_jobstatus.sensors.deepaffects import DeepAffectsJobSensor
from airflow_jobstatus.sensors.symbl import SymblJobSensor
from airflow_jobstatus.sensors.wasabi import WasabiAirJobSensor

MAX_ACTIVE = 64

for sensor, conn_keyword, service in (
    (DailyJobSensor, "daily_conn_id", "daily"),
    (WasabiAirJobSensor, "wasabi_air_conn_id", "wasabi_air"),
    (SymblJobSensor, "symbl_conn_id", "symbl"),
    (DeepAffectsJobSensor, "deepaffects_conn_id", "deepaffects"),
):
    with DAG(
        f"jobstatus_scale_out_{service}",
        schedule=None,
        catchup=False,
        max_active_runs=MAX_ACTIVE,
        max_active_tasks=MAX_ACTIVE,
        tags=["jobstatus-e2e", "scale-out"],
    ) as dag:
        sensor(
            task_id="wait",
            job_id="{{ dag_run.conf['job_id'] }}",
            deferrable=True,
            poll_interval=5,
            timeout=1200,
            **{conn_keyword: f"jobstatus_scale_{service}"},
        )
    globals()[dag.dag_id] = dag

"""DAGs for tests/e2e/test_sensors_e2e.py: one per service, and one waiting on all four at once.

Each sensor is deferrable and uses its service's default connection (``daily_default``...), which
the test defines as ``AIRFLOW_CONN_*`` variables pointing at the emulator. Job ids come from the
DAG run's conf.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_jobstatus.sensors.daily import DailyJobSensor
from airflow_jobstatus.sensors.deepaffects import DeepAffectsJobSensor
from airflow_jobstatus.sensors.symbl import SymblJobSensor
from airflow_jobstatus.sensors.wasabi import WasabiAirJobSensor

SENSORS = {
    "daily": DailyJobSensor,
    "wasabi_air": WasabiAirJobSensor,
    "symbl": SymblJobSensor,
    "deepaffects": DeepAffectsJobSensor,
}

for service, sensor in SENSORS.items():
    with DAG(f"jobstatus_e2e_{service}", schedule=None, catchup=False, tags=["jobstatus-e2e"]) as dag:
        sensor(
            task_id="wait",
            job_id="{{ dag_run.conf['job_id'] }}",
            deferrable=True,
            poll_interval=2,
            timeout=300,
        )
    globals()[dag.dag_id] = dag

with DAG("jobstatus_e2e_all", schedule=None, catchup=False, tags=["jobstatus-e2e"]) as all_services:
    for service, sensor in SENSORS.items():
        sensor(
            task_id=f"wait_{service}",
            job_id=f"{{{{ dag_run.conf['{service}'] }}}}",
            deferrable=True,
            poll_interval=2,
            timeout=600,
        )

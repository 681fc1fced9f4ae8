"""Daily batch processor: transcribe and summarize a recording, then deliver the files.

Style shown here: the submit operator returns at once (``wait_for_completion=False``) and a
separate deferrable sensor waits for the job, so the wait holds no worker slot.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, Param

from airflow_jobstatus.operators.daily import DailySubmitJobOperator
from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator
from airflow_jobstatus.sensors.daily import DailyJobSensor

# Where the files go unless a run says otherwise: an env var, then a local folder.
DESTINATION = os.environ.get("JOBSTATUS_EXAMPLE_DESTINATION", "file:///tmp/airflow-jobstatus-outputs")
POLL_INTERVAL = timedelta(seconds=float(os.environ.get("JOBSTATUS_EXAMPLE_POLL_SECONDS", "30")))

with DAG(
    dag_id="example_jobstatus_daily",
    schedule=None,
    catchup=False,
    tags=["airflow-jobstatus", "example", "daily"],
    params={
        "media_url": Param("https://media.example.com/meetings/weekly-sync.mp4", type="string"),
        "destination": Param(DESTINATION, type="string", description="s3://bucket/prefix or a folder"),
        "destination_conn_id": Param("aws_default", type="string"),
    },
    doc_md="""
### Daily: transcript and summary of a recording

1. **submit**: `POST /batch-processor` with the `summarize` preset on `params.media_url`; the
   output files are named after the job (`s3KeyTemplate` `{job_id}`, the operator's default).
   Daily takes a `language` only for the `transcript` preset.
2. **wait**: a deferrable `DailyJobSensor` waits for the job in the triggerer.
3. **deliver**: the transcript files and the summary go to
   `<params.destination>/daily/<job id>/`, with a `_manifest.json`.

Connections: `daily_default` (password: your API key) and `params.destination_conn_id` for an
S3 destination. Set `JOBSTATUS_EXAMPLE_DESTINATION` to change the default destination.
""",
) as dag:
    submit = DailySubmitJobOperator(
        task_id="submit",
        daily_conn_id="daily_default",
        preset="summarize",
        uri="{{ params.media_url }}",
        wait_for_completion=False,  # returns the job id; the sensor below waits
    )

    wait = DailyJobSensor(
        task_id="wait",
        daily_conn_id="daily_default",
        job_id=submit.output,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(hours=2),
    )

    deliver = JobOutputsToStorageOperator(
        task_id="deliver",
        job_conn_id="daily_default",
        job_id=wait.output,  # the final JobStatus
        destination="{{ params.destination }}",
        destination_conn_id="{{ params.destination_conn_id }}",
    )

    submit >> wait >> deliver

"""A meeting pipeline across services: Daily transcribes the recording, then Symbl.ai and
DeepAffects analyze it in parallel, and every job's files land in one destination.

The analyses start only once Daily has processed the recording, so a broken recording stops the
run before two more jobs are paid for. Every wait is deferred: no worker slot is held.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, Param

from airflow_jobstatus.operators.daily import DailySubmitJobOperator
from airflow_jobstatus.operators.deepaffects import DeepAffectsSubmitJobOperator
from airflow_jobstatus.operators.symbl import SymblSubmitJobOperator
from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator

DESTINATION = os.environ.get("JOBSTATUS_EXAMPLE_DESTINATION", "file:///tmp/airflow-jobstatus-outputs")
POLL_INTERVAL = timedelta(seconds=float(os.environ.get("JOBSTATUS_EXAMPLE_POLL_SECONDS", "30")))
# DeepAffects requires a webhook on every async request; the task polls anyway, so any URL you control.
WEBHOOK = os.environ.get("JOBSTATUS_EXAMPLE_DEEPAFFECTS_WEBHOOK", "https://hooks.example.com/deepaffects")

with DAG(
    dag_id="example_jobstatus_mixed_pipeline",
    schedule=None,
    catchup=False,
    tags=["airflow-jobstatus", "example", "daily", "symbl", "deepaffects"],
    default_args={"deferrable": True, "poll_interval": POLL_INTERVAL, "timeout": timedelta(hours=2)},
    params={
        "recording_id": Param("rec-weekly-sync", type="string", description="the Daily recording"),
        "media_url": Param("https://media.example.com/meetings/weekly-sync.mp4", type="string"),
        "destination": Param(DESTINATION, type="string", description="s3://bucket/prefix or a folder"),
        "destination_conn_id": Param("aws_default", type="string"),
    },
    doc_md="""
### Meeting pipeline: Daily, then Symbl.ai and DeepAffects, into one destination

1. **transcribe** (Daily): the `transcript` preset on `params.recording_id`.
2. **conversation** (Symbl.ai: topics, action items, questions...) and **speakers**
   (DeepAffects: who spoke when) on `params.media_url`, in parallel once the transcript exists.
3. **deliver_***: each job's files go to `<params.destination>/<service>/<job id>/`, each folder
   with its `_manifest.json`.

Connections: `daily_default`, `symbl_default`, `deepaffects_default` and
`params.destination_conn_id` for an S3 destination.
""",
) as dag:
    transcribe = DailySubmitJobOperator(
        task_id="transcribe",
        preset="transcript",
        recording_id="{{ params.recording_id }}",
        language="en",
    )

    conversation = SymblSubmitJobOperator(
        task_id="conversation",
        video_url="{{ params.media_url }}",
        name="{{ params.recording_id }} (Daily job {{ ti.xcom_pull(task_ids='transcribe', key='job_id') }})",
    )

    speakers = DeepAffectsSubmitJobOperator(
        task_id="speakers", api="diarize", url="{{ params.media_url }}", webhook=WEBHOOK
    )

    transcribe >> [conversation, speakers]

    jobs = {"daily_default": transcribe, "symbl_default": conversation, "deepaffects_default": speakers}
    for conn_id, job in jobs.items():
        JobOutputsToStorageOperator(
            task_id=f"deliver_{job.task_id}",
            job_conn_id=conn_id,
            job_id=job.output,
            destination="{{ params.destination }}",
            destination_conn_id="{{ params.destination_conn_id }}",
        )

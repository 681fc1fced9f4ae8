"""Symbl.ai: analyze a call recording (messages, topics, action items...), then deliver them.

Style shown here: submit without waiting, then a deferrable sensor. Symbl's job id is
``"<jobId>:<conversationId>"``: the conversation holds the outputs.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, Param

from airflow_jobstatus.operators.symbl import SymblSubmitJobOperator
from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator
from airflow_jobstatus.sensors.symbl import SymblJobSensor

DESTINATION = os.environ.get("JOBSTATUS_EXAMPLE_DESTINATION", "file:///tmp/airflow-jobstatus-outputs")
POLL_INTERVAL = timedelta(seconds=float(os.environ.get("JOBSTATUS_EXAMPLE_POLL_SECONDS", "30")))

with DAG(
    dag_id="example_jobstatus_symbl",
    schedule=None,
    catchup=False,
    tags=["airflow-jobstatus", "example", "symbl"],
    params={
        "audio_url": Param("https://media.example.com/calls/support-call.mp3", type="string"),
        "language_code": Param("en-US", type="string"),
        "speakers": Param(2, type="integer", minimum=1),
        "destination": Param(DESTINATION, type="string", description="s3://bucket/prefix or a folder"),
        "destination_conn_id": Param("aws_default", type="string"),
    },
    doc_md="""
### Symbl.ai: conversation intelligence for a call

1. **submit**: `POST /v1/process/audio/url` with speaker diarization; returns
   `"<jobId>:<conversationId>"` at once.
2. **wait**: a deferrable `SymblJobSensor` waits for the job in the triggerer.
3. **deliver**: the conversation's documents (messages, topics, action items, follow-ups,
   questions, ...) go to `<params.destination>/symbl/<job id>/` with a `_manifest.json`.

Connections: `symbl_default` (login: App ID, password: App secret) and
`params.destination_conn_id` for an S3 destination.
""",
) as dag:
    submit = SymblSubmitJobOperator(
        task_id="submit",
        symbl_conn_id="symbl_default",
        audio_url="{{ params.audio_url }}",
        name="support call {{ ds }} ({{ run_id }})",
        language_code="{{ params.language_code }}",
        enable_speaker_diarization=True,
        diarization_speaker_count="{{ params.speakers }}",
        wait_for_completion=False,  # returns "<jobId>:<conversationId>"; the sensor below waits
    )

    wait = SymblJobSensor(
        task_id="wait",
        symbl_conn_id="symbl_default",
        job_id=submit.output,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(hours=2),
    )

    deliver = JobOutputsToStorageOperator(
        task_id="deliver",
        job_conn_id="symbl_default",
        job_id=wait.output,
        destination="{{ params.destination }}",
        destination_conn_id="{{ params.destination_conn_id }}",
    )

    submit >> wait >> deliver

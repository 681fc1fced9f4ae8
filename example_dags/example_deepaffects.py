"""DeepAffects: transcribe a recording with speaker labels, then deliver the result.

Style shown here: the submit operator waits for its own request, deferred. DeepAffects returns
the result inline in its status; the delivery writes it as a JSON file.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, Param

from airflow_jobstatus.operators.deepaffects import DeepAffectsSubmitJobOperator
from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator

DESTINATION = os.environ.get("JOBSTATUS_EXAMPLE_DESTINATION", "file:///tmp/airflow-jobstatus-outputs")
POLL_INTERVAL = timedelta(seconds=float(os.environ.get("JOBSTATUS_EXAMPLE_POLL_SECONDS", "30")))
# DeepAffects requires a webhook on every async request; the task polls anyway, so any URL you control.
WEBHOOK = os.environ.get("JOBSTATUS_EXAMPLE_DEEPAFFECTS_WEBHOOK", "https://hooks.example.com/deepaffects")

with DAG(
    dag_id="example_jobstatus_deepaffects",
    schedule=None,
    catchup=False,
    tags=["airflow-jobstatus", "example", "deepaffects"],
    params={
        "audio_url": Param("https://media.example.com/calls/support-call.wav", type="string"),
        "sample_rate": Param(16000, type="integer"),
        "webhook": Param(WEBHOOK, type="string", description="the URL DeepAffects POSTs the result to"),
        "destination": Param(DESTINATION, type="string", description="s3://bucket/prefix or a folder"),
        "destination_conn_id": Param("aws_default", type="string"),
    },
    doc_md="""
### DeepAffects: speech to text with speaker labels

1. **transcribe**: `POST /audio/generic/api/v1/async/asr` on `params.audio_url`, with the
   required `webhook` (`params.webhook`) and a new `request_id` (the job id is recorded before
   waiting: a retry resumes it, a clear reruns); the operator then waits, deferred, and returns the
   final status. DeepAffects allows 100 requests a day: poll sparingly
   (`JOBSTATUS_EXAMPLE_POLL_SECONDS`; the operator's own default is 2 hours).
2. **deliver**: the transcript (inline in the status) goes to
   `<params.destination>/deepaffects/<request id>/` with a `_manifest.json`.

Connections: `deepaffects_default` (password: your API key) and `params.destination_conn_id` for
an S3 destination.
""",
) as dag:
    transcribe = DeepAffectsSubmitJobOperator(
        task_id="transcribe",
        deepaffects_conn_id="deepaffects_default",
        api="asr",
        url="{{ params.audio_url }}",
        encoding="wav",
        sample_rate="{{ params.sample_rate }}",
        enable_punctuation=True,
        enable_speaker_diarization=True,
        webhook="{{ params.webhook }}",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(hours=2),
    )

    deliver = JobOutputsToStorageOperator(
        task_id="deliver",
        job_conn_id="deepaffects_default",
        job_id=transcribe.output,
        destination="{{ params.destination }}",
        destination_conn_id="{{ params.destination_conn_id }}",
    )

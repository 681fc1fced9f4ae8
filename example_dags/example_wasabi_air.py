"""Wasabi AiR: index a video stored in Wasabi (speech to text, OCR), then deliver the metadata.

Style shown here: the submit operator waits for its own job, deferred (``deferrable=True``), and
returns the final JobStatus, which the delivery takes as its job.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, Param

from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator
from airflow_jobstatus.operators.wasabi import WasabiAirSubmitJobOperator

DESTINATION = os.environ.get("JOBSTATUS_EXAMPLE_DESTINATION", "file:///tmp/airflow-jobstatus-outputs")
POLL_INTERVAL = timedelta(seconds=float(os.environ.get("JOBSTATUS_EXAMPLE_POLL_SECONDS", "30")))

with DAG(
    dag_id="example_jobstatus_wasabi_air",
    schedule=None,
    catchup=False,
    tags=["airflow-jobstatus", "example", "wasabi-air"],
    params={
        "source_endpoint": Param("https://s3.us-east-1.wasabisys.com", type="string"),
        "source_bucket": Param("media", type="string"),
        "object_key": Param("videos/keynote.mp4", type="string"),
        "air_bucket": Param("air-metadata", type="string", description="where AiR writes its metadata"),
        "region": Param("us-east-1", type="string"),
        "destination": Param(DESTINATION, type="string", description="s3://bucket/prefix or a folder"),
        "destination_conn_id": Param("aws_default", type="string"),
    },
    doc_md="""
### Wasabi AiR: index a video, then deliver its metadata

1. **index**: `POST /jobs` with the `s2t` and `ocr` services on `params.object_key`; the
   operator then waits for the job, deferred, and returns its final status.
2. **deliver**: the job's metadata JSON, which AiR writes into `params.air_bucket`, is copied to
   `<params.destination>/wasabi_air/<job id>/` with a `_manifest.json`.

Connections: `wasabi_air_default` (host: your AiR API URL, login/password: access and secret key;
extra `s3_endpoint_url` if your bucket is not at `s3.<region>.wasabisys.com`), `wasabi_s3` (an
`aws` connection with the same keys, which reads `params.air_bucket`), and
`params.destination_conn_id` for an S3 destination.
""",
) as dag:
    index = WasabiAirSubmitJobOperator(
        task_id="index",
        wasabi_air_conn_id="wasabi_air_default",
        name="keynote-{{ ds_nodash }}",
        batch="{{ run_id }}",
        services={"s2t": "", "ocr": ""},
        source={
            "Endpoint": "{{ params.source_endpoint }}",
            "Bucket": "{{ params.source_bucket }}",
            "Region": "{{ params.region }}",
            "ObjectKey": "{{ params.object_key }}",
        },
        destination={"Bucket": "{{ params.air_bucket }}", "Region": "{{ params.region }}"},
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(hours=6),
    )

    deliver = JobOutputsToStorageOperator(
        task_id="deliver",
        job_conn_id="wasabi_air_default",
        job_id=index.output,  # the final JobStatus
        source_aws_conn_id="wasabi_s3",
        destination="{{ params.destination }}",
        destination_conn_id="{{ params.destination_conn_id }}",
    )

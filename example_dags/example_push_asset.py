"""Event-driven scheduling with push completion: run this DAG each time a Daily transcript ends.

An asset watcher (`JobEventTrigger`) listens, in the triggerer, to the webhook events that push
completion publishes in Redis (README "Push completion": ``[jobstatus] redis_url``, the receiver
in the api-server, and the Daily domain's webhook made once with
``python -m airflow_jobstatus.push.setup daily --conn-id daily_default``). For each event of a
``transcript`` job of ``daily_default`` it asks Daily for the job's status once and, if the job
has ended, updates the asset, which schedules this DAG. Each webhook is a new message, so a job that
stays finished does not schedule it again. The task below reads which job it was.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_jobstatus.push.event_trigger import JobEventTrigger

CONN_ID = os.environ.get("JOBSTATUS_EXAMPLE_DAILY_CONN_ID", "daily_default")

finished_transcripts = Asset(
    "jobstatus-daily-transcripts",
    watchers=[
        AssetWatcher(
            name="daily_transcript_ended",
            trigger=JobEventTrigger(service="daily", conn_id=CONN_ID, preset="transcript"),
        )
    ],
)

with DAG(
    dag_id="example_jobstatus_push_asset",
    schedule=[finished_transcripts],
    catchup=False,
    tags=["airflow-jobstatus", "example", "daily", "push"],
    doc_md=__doc__,
):

    @task
    def report(triggering_asset_events=None) -> list[dict]:
        """The ended jobs that scheduled this run: ``{service, conn_id, job_id, state, ...}``."""
        jobs = []
        for events in (triggering_asset_events or {}).values():
            for event in events:
                jobs.append(dict(event.extra or {}))
        print(f"ended jobs: {jobs}")
        return jobs

    report()

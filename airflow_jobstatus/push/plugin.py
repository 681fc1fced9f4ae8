"""The Airflow plugin that mounts the webhook receiver in the api-server at ``/jobstatus``.

Registered through the ``airflow.plugins`` entry point. Airflow mounts each ``fastapi_apps`` entry
with ``app.mount(url_prefix, app)`` and applies no authentication to it (see `receiver.py`).
Building the app is cheap and reads no configuration: every Airflow component loads plugins, and
only the api-server serves this one. Without ``[jobstatus] redis_url`` every route answers 404.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_jobstatus.push.receiver import create_app

URL_PREFIX = "/jobstatus"


class JobStatusPushPlugin(AirflowPlugin):
    name = "jobstatus_push"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "airflow-jobstatus webhook receiver"}
    ]

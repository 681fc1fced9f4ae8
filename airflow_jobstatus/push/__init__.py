"""Push completion: the services' webhooks, received by Airflow, wake the waiting tasks.

A webhook is only a hint. The receiver (`receiver.py`, mounted in the api-server by `plugin.py`)
checks each webhook and publishes ``{service, conn_id, job_id, received_at}`` through Redis; the
listener (`listener.py`, one per triggerer event loop) routes it to the waits on that job, which
then ask the service for the job's status once and decide from its answer.

Push is off unless ``[jobstatus] redis_url`` is set (`config.py`); then nothing here imports
``redis`` and every wait polls as before.
"""

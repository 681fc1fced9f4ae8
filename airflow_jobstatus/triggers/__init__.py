"""Triggers: `JobStatusTrigger` (``triggers/job.py``) on the shared poll hub (``triggers/hub.py``)."""

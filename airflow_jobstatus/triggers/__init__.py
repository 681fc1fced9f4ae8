"""Triggers: `JobStatusTrigger` (``triggers/job.py``) on the shared poll hub (``triggers/hub.py``, with
``waits.py``, ``poller.py``, ``batching.py`` and ``pacing.py``)."""

"""`SymblJobSensor`: wait for a Symbl.ai async job."""

from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.services import SYMBL


class SymblJobSensor(JobSensor):
    """Wait for a Symbl.ai job to end (see `JobSensor` for every parameter).

    :param job_id: ``"<jobId>:<conversationId>"`` as ``SymblHook.submit_job`` returns it, or a bare
        ``jobId`` (then the final status lists no outputs) (templated).
    """

    spec = SYMBL

"""`DailySubmitJobOperator`: submit a Daily batch-processor job and wait for it."""

from airflow_jobstatus.operators.base import JobSubmitOperator
from airflow_jobstatus.services.daily import DAILY


class DailySubmitJobOperator(JobSubmitOperator):
    """Submit a Daily batch-processor job (``POST /batch-processor``) and, by default, wait for it (see
    `JobSubmitOperator`); Daily can delete a job (``delete_on_kill``). The fields of `DailySubmitRequest`:
    """

    spec = DAILY

"""The one HTTP core every hook uses: shared clients, retries, rate limits, redaction, typed errors."""

from airflow_jobstatus.http.client import ServiceClient
from airflow_jobstatus.http.retry import RetryPolicy
from airflow_jobstatus.http.settings import HttpSettings

__all__ = ["HttpSettings", "RetryPolicy", "ServiceClient"]

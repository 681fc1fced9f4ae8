"""Typed models: the provider's job model and each service's documented responses.

``airflow_jobstatus.models`` re-exports the shared job model (:mod:`.common`) and each service's
status map and ``*_job_status`` translator; the services' response models live in
:mod:`.daily`, :mod:`.wasabi`, :mod:`.symbl` and :mod:`.deepaffects`. Nothing here imports Airflow.
"""

from airflow_jobstatus.models.common import (
    TERMINAL_STATES,
    ApiDocument,
    ApiModel,
    DownloadLink,
    InlineDocument,
    IsoDatetime,
    JobOutput,
    JobState,
    JobStatus,
    OutputLocation,
    S3Object,
    Service,
    media_type_for,
    normalize_state,
    parse_s3_uri,
    redact_secrets,
    resolve_json_pointer,
)
from airflow_jobstatus.models.daily import DAILY_STATUS_MAP, daily_attach_links, daily_job_status
from airflow_jobstatus.models.deepaffects import DEEPAFFECTS_STATUS_MAP, deepaffects_job_status
from airflow_jobstatus.models.symbl import SYMBL_STATUS_MAP, symbl_job_status
from airflow_jobstatus.models.wasabi import WASABI_STATUS_MAP, wasabi_job_status

__all__ = [
    "DAILY_STATUS_MAP",
    "DEEPAFFECTS_STATUS_MAP",
    "SYMBL_STATUS_MAP",
    "TERMINAL_STATES",
    "WASABI_STATUS_MAP",
    "ApiDocument",
    "ApiModel",
    "DownloadLink",
    "InlineDocument",
    "IsoDatetime",
    "JobOutput",
    "JobState",
    "JobStatus",
    "OutputLocation",
    "S3Object",
    "Service",
    "daily_attach_links",
    "daily_job_status",
    "deepaffects_job_status",
    "media_type_for",
    "normalize_state",
    "parse_s3_uri",
    "redact_secrets",
    "resolve_json_pointer",
    "symbl_job_status",
    "wasabi_job_status",
]

"""Typed models: the provider's job model and each service's documented responses.

``airflow_jobstatus.models`` re-exports the shared job model (:mod:`.common`) and each service's
status map and ``*_job_status`` translator; the services' response models live in each service's
description (``airflow_jobstatus.services.<service>``). Nothing here imports Airflow.
"""

import importlib
from typing import Any

from airflow_jobstatus.models import common
from airflow_jobstatus.models.common import *  # noqa: F403  (the shared job model: common.__all__)

_FROM_SERVICES = {
    "DAILY_STATUS_MAP": "daily",
    "daily_attach_links": "daily",
    "daily_job_status": "daily",
    "WASABI_STATUS_MAP": "wasabi_air",
    "wasabi_job_status": "wasabi_air",
    "DEEPAFFECTS_STATUS_MAP": "deepaffects",
    "deepaffects_job_status": "deepaffects",
    "SYMBL_STATUS_MAP": "symbl",
    "symbl_job_status": "symbl",
}
"""Names now defined by a service's description (imported on first use: descriptions import this package)."""


def __getattr__(name: str) -> Any:
    if name in _FROM_SERVICES:
        return getattr(importlib.import_module(f"airflow_jobstatus.services.{_FROM_SERVICES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted({*common.__all__, *_FROM_SERVICES} - {"DEFAULT_MAX_XCOM_BYTES", "xcom_value"})
"""The shared job model and the services' names (the XCom cap and `xcom_value`, for waits, stay common's)."""

"""The one HTTP core every hook uses: shared clients, retries, rate limits, redaction, typed errors.

The names below load on first use: service descriptions import `http.call` while Airflow reads the
provider's registration, before the client (which imports Airflow's exceptions) may load.
"""

import importlib
from typing import Any

_NAMES = {"HttpSettings": "settings", "RetryPolicy": "retry", "ServiceClient": "client"}

__all__ = ["HttpSettings", "RetryPolicy", "ServiceClient"]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"airflow_jobstatus.http.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

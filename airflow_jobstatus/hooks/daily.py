"""`DailyHook`: the Daily description (services/daily.py) run by the generic hook."""

from airflow_jobstatus.hooks.base import ListingHookMixin
from airflow_jobstatus.services.daily import DAILY


class DailyHook(ListingHookMixin):
    """Daily's batch processor: submit, status, access links, list (filter ``recording_id``), delete,
    and `ensure_webhook`, which sets up the domain's webhook for push completion.

    :param daily_conn_id: a ``daily`` connection (password = API key; host optional).
    """

    spec = DAILY

"""Run the one-time push-completion setup of a connection from the command line.

``python -m airflow_jobstatus.push.setup daily --conn-id daily_default [--base-url URL] [--replace]``
creates or fixes the account's webhook (``hook.ensure_webhook``, for a service whose `WebhookSpec`
has a `registration`: Daily's domain webhook) and prints what it did (the webhook's id, URL, state;
never its secret). Run it where the connection and the ``[jobstatus]`` configuration are readable
(e.g. ``airflow`` containers), once per connection and again after changing its secret or the base
URL. Symbl.ai and DeepAffects need no setup: their submit operators pass the webhook with each job.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from airflow_jobstatus.exceptions import JobStatusError
from airflow_jobstatus.services import SERVICES

REGISTERED = [name for name, spec in SERVICES.items() if spec.webhook and spec.webhook.registration]
"""The services whose webhook is set up once per account."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_jobstatus.push.setup",
        description="Create or check a service's webhook for jobstatus push completion.",
    )
    parser.add_argument("service", choices=REGISTERED, help="the service to set up (only these need it)")
    parser.add_argument(
        "--conn-id", default=None, help="the connection (default: the service's, e.g. daily_default)"
    )
    parser.add_argument("--base-url", default=None, help="default: [jobstatus] webhook_base_url")
    parser.add_argument(
        "--replace", action="store_true", help="repoint the account's webhook if it calls another URL"
    )
    args = parser.parse_args(argv)
    spec = SERVICES[args.service]
    try:
        hook = spec.make_hook(args.conn_id or spec.default_conn_id)
        result = hook.ensure_webhook(args.base_url, replace=args.replace)
    except JobStatusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

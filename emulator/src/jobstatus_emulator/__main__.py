"""``python -m jobstatus_emulator --host 127.0.0.1 --port N [...]``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from jobstatus_emulator.faults import validate_rule
from jobstatus_emulator.state import EmulatorConfig, validate_bucket_setting


def parse_args(argv: Sequence[str] | None = None) -> tuple[EmulatorConfig, str]:
    """Each option's destination is the `EmulatorConfig` field it sets, its default that field's."""
    start = EmulatorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m jobstatus_emulator",
        description="Local emulator of the Daily, Wasabi AiR, Symbl.ai and DeepAffects job APIs.",
    )
    parser.add_argument("--host", default=start.host)
    parser.add_argument("--port", type=int, default=start.port)
    parser.add_argument(
        "--s3-endpoint", default=start.s3_endpoint, help="S3 server for customer-bucket outputs"
    )
    parser.add_argument("--s3-access-key", default=start.s3_access_key)
    parser.add_argument("--s3-secret-key", default=start.s3_secret_key)
    parser.add_argument("--s3-region", default=start.s3_region)
    parser.add_argument(
        "--job-duration", type=float, default=start.job_duration, help="default job duration in seconds"
    )
    parser.add_argument("--seed", type=int, default=start.seed, help="seed for content and random faults")
    parser.add_argument("--symbl-token-lifetime", type=float, default=start.symbl_token_lifetime)
    parser.add_argument("--symbl-max-concurrent-jobs", type=int, default=start.symbl_max_concurrent_jobs)
    parser.add_argument(
        "--wasabi-metadata-lag",
        type=float,
        default=start.wasabi_metadata_lag,
        help="s after completion /metadata still 404s",
    )
    parser.add_argument(
        "--deepaffects-requests-per-minute",
        type=int,
        default=start.deepaffects_requests_per_minute,
        help="DeepAffects requests per minute per API and key (documented: 5); 0 = no limit",
    )
    parser.add_argument(
        "--deepaffects-requests-per-day",
        type=int,
        default=start.deepaffects_requests_per_day,
        help="DeepAffects requests per day per key (documented: 100); 0 = no limit",
    )
    parser.add_argument(
        "--link-ttl", type=float, default=start.link_ttl, help="Daily access-link lifetime (s)"
    )
    parser.add_argument(
        "--daily-bucket",
        default=None,
        help='JSON {"bucket", "region", "prefix"}: Daily outputs go to this S3 bucket instead of Daily storage',
    )
    parser.add_argument("--public-url", default=start.public_url, help="base URL of Daily storage links")
    parser.add_argument(
        "--fault", dest="faults", action="append", default=[], help="a fault rule as JSON (repeatable)"
    )
    parser.add_argument(
        "--state-file",
        default=start.state_file,
        help="keep accounts and jobs in this file (JSON lines), loaded at start: jobs survive a restart",
    )
    parser.add_argument(
        "--webhook-host",
        dest="webhook_hosts",
        action="append",
        default=[],
        help="a host name webhooks may be sent to besides loopback, e.g. a compose service (repeatable)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    options = vars(parser.parse_args(argv))
    log_level = options.pop("log_level")
    try:
        options["faults"] = [validate_rule(json.loads(raw)) for raw in options["faults"]]
        raw_bucket = options["daily_bucket"]
        options["daily_bucket"] = validate_bucket_setting(json.loads(raw_bucket)) if raw_bucket else None
    except ValueError as exc:
        parser.error(str(exc))
    return EmulatorConfig(**options), log_level


def main(argv: Sequence[str] | None = None) -> int:
    config, log_level = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, log_level.upper()), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from jobstatus_emulator.app import run

    run(config, log_level=log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())

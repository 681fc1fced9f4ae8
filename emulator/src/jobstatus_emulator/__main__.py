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
    parser = argparse.ArgumentParser(
        prog="python -m jobstatus_emulator",
        description="Local emulator of the Daily, Wasabi AiR, Symbl.ai and DeepAffects job APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--s3-endpoint", default=None, help="S3 server for customer-bucket outputs")
    parser.add_argument("--s3-access-key", default="testing")
    parser.add_argument("--s3-secret-key", default="testing")
    parser.add_argument("--s3-region", default="us-east-1")
    parser.add_argument("--job-duration", type=float, default=3.0, help="default job duration in seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed for content and random faults")
    parser.add_argument("--symbl-token-lifetime", type=float, default=86400.0)
    parser.add_argument("--symbl-max-concurrent-jobs", type=int, default=50)
    parser.add_argument(
        "--wasabi-metadata-lag", type=float, default=1.0, help="s after completion /metadata still 404s"
    )
    parser.add_argument(
        "--deepaffects-requests-per-minute",
        type=int,
        default=5,
        help="DeepAffects requests per minute per API and key (documented: 5); 0 = no limit",
    )
    parser.add_argument(
        "--deepaffects-requests-per-day",
        type=int,
        default=100,
        help="DeepAffects requests per day per key (documented: 100); 0 = no limit",
    )
    parser.add_argument("--link-ttl", type=float, default=3600.0, help="Daily access-link lifetime (s)")
    parser.add_argument(
        "--daily-bucket",
        default=None,
        help='JSON {"bucket", "region", "prefix"}: Daily outputs go to this S3 bucket instead of Daily storage',
    )
    parser.add_argument("--public-url", default=None, help="base URL of Daily storage links")
    parser.add_argument("--fault", action="append", default=[], help="a fault rule as JSON (repeatable)")
    parser.add_argument(
        "--state-file",
        default=None,
        help="keep accounts and jobs in this file (JSON lines), loaded at start: jobs survive a restart",
    )
    parser.add_argument(
        "--webhook-host",
        action="append",
        default=[],
        help="a host name webhooks may be sent to besides loopback, e.g. a compose service (repeatable)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    args = parser.parse_args(argv)
    try:
        faults = [validate_rule(json.loads(raw)) for raw in args.fault]
        daily_bucket = validate_bucket_setting(json.loads(args.daily_bucket)) if args.daily_bucket else None
    except ValueError as exc:
        parser.error(str(exc))
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        job_duration=args.job_duration,
        symbl_token_lifetime=args.symbl_token_lifetime,
        symbl_max_concurrent_jobs=args.symbl_max_concurrent_jobs,
        wasabi_metadata_lag=args.wasabi_metadata_lag,
        deepaffects_requests_per_minute=args.deepaffects_requests_per_minute,
        deepaffects_requests_per_day=args.deepaffects_requests_per_day,
        link_ttl=args.link_ttl,
        seed=args.seed,
        daily_bucket=daily_bucket,
        s3_endpoint=args.s3_endpoint,
        s3_access_key=args.s3_access_key,
        s3_secret_key=args.s3_secret_key,
        s3_region=args.s3_region,
        public_url=args.public_url,
        faults=faults,
        state_file=args.state_file,
        webhook_hosts=list(args.webhook_host),
    )
    return config, args.log_level


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

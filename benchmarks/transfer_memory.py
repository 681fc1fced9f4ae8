"""Peak memory of a multi-GiB output streamed into an S3 destination, next to the documented bound.

A generated stream (2 GiB by default; never stored on disk) of unknown size, like a download link
without ``Content-Length``, is delivered by the transfer machinery of `JobOutputsToStorageOperator`
(`airflow_jobstatus.transfer.deliver_outputs` into an `S3Sink` with its defaults: boto3's managed
transfer with the sink's part size, concurrency and memory budget, the bytes hashed and verified
before the upload completes) to a bucket on a moto S3 server (a separate process on loopback).
The same bytes are then uploaded by boto3's ``upload_fileobj`` with its default ``TransferConfig``
as the reference.

Each case runs in its own process: "peak RSS" is its ``ru_maxrss``, "RSS growth" the peak minus
the RSS after imports and client set-up. The documented bound is the sink's upload buffer
(``UPLOAD_BUFFER_BYTES``: parts queued or uploading) plus, per output, two parts (the next part
while it is joined from chunks) and two 1 MiB chunks.

With ``--repeat R`` the cases run interleaved R times; throughput is the median run's, RSS the
highest seen.

Targets: RSS growth within the bound plus 64 MiB (the interpreter, botocore and the allocator's
slack); the stored object's size equals the bytes sent. Throughput is printed for both cases
(moto on a shared machine is the bottleneck: compare them within one run only).

Usage: python benchmarks/transfer_memory.py [--gib G | --mib M] [--outputs N] [--quick] [--repeat R]
       [--part-mib P] [--concurrency C] [--buffer-mib B]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import current_rss_mb, peak_rss_mb, run_case, s3_case_env

CONN_ID = "bench_aws"
BUCKET = "bench-memory"
SLACK_MIB = 64
MIB = 1024 * 1024


def _generated(total: int, seed: int) -> Iterator[bytes]:
    """``total`` bytes in 1 MiB chunks from one random block (each chunk's first bytes vary)."""
    block = bytearray(os.urandom(MIB))
    sent = 0
    while sent < total:
        n = min(MIB, total - sent)
        block[:8] = (sent + seed).to_bytes(8, "little")
        yield bytes(block[:n])
        sent += n


def worker(case: dict[str, Any]) -> dict[str, Any]:
    total, outputs, endpoint = case["bytes"], case["outputs"], case["endpoint"]
    each = total // outputs
    if case["impl"] == "ours":
        from airflow_jobstatus.models import DownloadLink, JobOutput
        from airflow_jobstatus.transfer import deliver_outputs, plan_outputs
        from airflow_jobstatus.transfer.s3 import S3Access
        from airflow_jobstatus.transfer.sinks import S3Sink
        from airflow_jobstatus.transfer.sources import Opened, Source

        class Generated(Source):
            def open(self) -> Opened:
                return Opened(_generated(each, int(self.output.name[1:])), None, None)

        tuning = {k: v for k, v in case["sink"].items() if v is not None}  # the sink's defaults otherwise
        sink = S3Sink(S3Access(CONN_ID), BUCKET, "ours", **tuning)
        sink.client.head_bucket(Bucket=BUCKET)
        sources = [
            Generated(
                output=JobOutput(name=f"o{i}", format="bin", location=DownloadLink(url=f"gen://{i}")),
                kind="link",
                display=f"generated:{i}",
                lineage=("generated", str(i)),
            )
            for i in range(outputs)
        ]
        planned, manifest_rel = plan_outputs("daily", "bench-memory", [s.output for s in sources])
        baseline = current_rss_mb()
        started = time.perf_counter()
        manifest = deliver_outputs(
            service="daily",
            job_id="bench-memory",
            sink=sink,
            planned=list(zip(planned, sources, strict=True)),
            manifest_rel=manifest_rel,
            max_concurrency=outputs,
        ).manifest
        seconds = time.perf_counter() - started
        stored = sum(
            sink.client.head_object(Bucket=BUCKET, Key=sink.key(p.relative_key))["ContentLength"]
            for p in planned
        )
        bound = sink.upload_buffer_bytes + outputs * (2 * sink.part_size + 2 * MIB)
        assert manifest["summary"]["written"] == outputs
    else:
        import boto3
        from boto3.s3.transfer import TransferConfig

        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.head_bucket(Bucket=BUCKET)

        class Stream:
            """A non-seekable file: what a download link gives."""

            def __init__(self, seed: int) -> None:
                self.chunks = _generated(each, seed)
                self.rest = b""

            def read(self, n: int = -1) -> bytes:
                out = [self.rest]
                have = len(self.rest)
                while n < 0 or have < n:
                    chunk = next(self.chunks, None)
                    if chunk is None:
                        break
                    out.append(chunk)
                    have += len(chunk)
                data = b"".join(out)
                if n >= 0:
                    data, self.rest = data[:n], data[n:]
                else:
                    self.rest = b""
                return data

        baseline = current_rss_mb()
        started = time.perf_counter()
        for i in range(outputs):
            client.upload_fileobj(Stream(i), BUCKET, f"boto3/o{i}.bin", Config=TransferConfig())
        seconds = time.perf_counter() - started
        stored = sum(
            client.head_object(Bucket=BUCKET, Key=f"boto3/o{i}.bin")["ContentLength"] for i in range(outputs)
        )
        bound = 0
    return {
        "impl": case["impl"],
        "seconds": seconds,
        "bytes": each * outputs,
        "stored": stored,
        "rss_baseline_mb": baseline,
        "rss_peak_mb": peak_rss_mb(),
        "bound_bytes": bound,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=2.0, help="bytes moved in all, in GiB (default 2)")
    parser.add_argument("--mib", type=int, default=None, help="bytes moved in all, in MiB (overrides --gib)")
    parser.add_argument("--outputs", type=int, default=1, help="outputs moved at the same time (default 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 48 MiB")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved runs per case; medians shown")
    parser.add_argument(
        "--part-mib", type=int, help="ours: S3Sink(part_size=...) in MiB (default: the sink's)"
    )
    parser.add_argument("--concurrency", type=int, help="ours: S3Sink(upload_concurrency=...)")
    parser.add_argument("--buffer-mib", type=int, help="ours: S3Sink(upload_buffer_bytes=...) in MiB")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    from airflow_jobstatus.testing.s3 import S3Server

    total = (48 if args.quick else args.mib or int(args.gib * 1024)) * MIB
    work = Path(tempfile.mkdtemp(prefix="jobstatus-bench-memory-"))
    print(f"{total / MIB:.0f} MiB of unknown size in {args.outputs} output(s), streamed to S3 (moto server)")
    failures: list[str] = []
    with S3Server(log_path=work / "moto.log") as s3:
        env = s3_case_env(s3, CONN_ID, work)
        header = f"{'implementation':<24}{'MiB/s':>8}{'peak RSS MB':>13}{'RSS growth MB':>15}{'bound MB':>10}"
        print(header)
        print("-" * len(header))
        runs: dict[str, list[dict[str, Any]]] = {}
        for _attempt in range(args.repeat):  # interleaved: ours, reference, ours, reference...
            for impl in ("ours", "boto3 upload_fileobj"):
                s3.reset()  # moto keeps objects in memory: one case's objects at a time
                s3.client().create_bucket(Bucket=BUCKET)
                case = {
                    "impl": impl,
                    "bytes": total,
                    "outputs": args.outputs,
                    "endpoint": s3.endpoint_url,
                    "sink": {
                        "part_size": args.part_mib and args.part_mib * MIB,
                        "upload_concurrency": args.concurrency,
                        "upload_buffer_bytes": args.buffer_mib and args.buffer_mib * MIB,
                    },
                }
                runs.setdefault(impl, []).append(run_case(__file__, case, env, label=impl, timeout=3600))
        for impl, found in runs.items():
            r = sorted(found, key=lambda x: x["seconds"])[(len(found) - 1) // 2]  # the median run
            growth = max(x["rss_peak_mb"] - x["rss_baseline_mb"] for x in found)
            bound = f"{r['bound_bytes'] / MIB:.0f}" if r["bound_bytes"] else "-"
            rate = r["bytes"] / MIB / r["seconds"]
            peak = max(x["rss_peak_mb"] for x in found)
            print(f"{impl:<24}{rate:>8.1f}{peak:>13.0f}{growth:>15.0f}{bound:>10}")
            rounds = ", ".join(f"{x['bytes'] / MIB / x['seconds']:.1f}" for x in found)
            print(f"  MiB/s by round: {rounds}")
            if any(x["stored"] != x["bytes"] for x in found):
                failures.append(f"{impl}: {r['stored']} bytes stored, {r['bytes']} sent")
            if r["bound_bytes"] and growth > r["bound_bytes"] / MIB + SLACK_MIB:
                failures.append(
                    f"{impl}: RSS grew {growth:.0f} MB, over the bound {r['bound_bytes'] / MIB:.0f} + {SLACK_MIB}"
                )
        s3.reset()
    print()
    for failure in failures:
        print(f"FAIL: {failure}")
    print("RESULT: " + ("FAIL" if failures else "PASS"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

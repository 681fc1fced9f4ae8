"""JobStatusTrigger against the emulator over real HTTP: coalescing, batching, rate limits, 429s.

Triggers run the way the triggerer runs them: many ``run()`` generators as tasks of one event
loop. Requests are counted by the emulator (``/_admin/stats``). The loops run in asyncio debug mode
and fail on a slow callback (over 50 ms of CPU or 100 ms blocked), as the unit tests do.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import pytest

from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.triggers.job import JobStatusTrigger
from tests.helpers.jobs import wasabi_job
from tests.helpers.triggers import first_event, run_debug

pytestmark = pytest.mark.integration

JOB_ROUTE = "/batch-processor/{id}"
LIST_ROUTE = "/batch-processor"


async def run_all(triggers: list[JobStatusTrigger]) -> list[dict[str, Any]]:
    """Start the triggers a few at a time (debug mode records a stack per task), then await all."""
    tasks = []
    for i, trigger in enumerate(triggers):
        tasks.append(asyncio.ensure_future(first_event(trigger)))
        if i % 10 == 9:
            await asyncio.sleep(0)
    return list(await asyncio.gather(*tasks))


def counts(emulator: Any, service: str, credential: str) -> dict[tuple[str, str, int], int]:
    out: dict[tuple[str, str, int], int] = {}
    for row in emulator.stats(service=service, credential=credential)["requests"]:
        key = (row["method"], row["route"], row["status"])
        out[key] = out.get(key, 0) + row["count"]
    return out


def daily_trigger(conn_id: str, job_id: str, interval: float = 1.0, timeout: float = 60) -> JobStatusTrigger:
    return JobStatusTrigger(
        service="daily",
        conn_id=conn_id,
        job_id=job_id,
        poll_interval=interval,
        deadline=time.time() + timeout,
    )


async def submit_daily(hook: DailyHook, n: int, marker: str) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 100):
        batch = range(start, min(n, start + 100))
        ids += await asyncio.gather(
            *(hook.asubmit_job("transcript", uri=f"https://media.example/{i}.mp4?{marker}") for i in batch)
        )
    return ids


def test_200_waits_on_one_job_make_one_request_per_interval(make_connection, emulator) -> None:
    conn_id, key = make_connection("daily")
    hook = DailyHook(daily_conn_id=conn_id)
    job_id = hook.submit_job("transcript", uri="https://media.example/a.mp4?emu_duration=6")
    started = time.monotonic()

    events = run_debug(lambda: run_all([daily_trigger(conn_id, job_id) for _ in range(200)]))
    elapsed = time.monotonic() - started

    assert all(e["event"] == "succeeded" and e["job"]["job_id"] == job_id for e in events)
    gets = counts(emulator, "daily", key).get(("GET", JOB_ROUTE, 200), 0)
    # first poll one interval (>= 2 s) after registration, then one per 1 s interval (+-10%) until
    # the job finished at 6 s: about 5 requests for all 200 waits
    assert 3 <= gets <= elapsed / 0.9, (gets, elapsed)


def test_1000_waits_on_one_daily_account_use_list_pages(make_connection, emulator) -> None:
    conn_id, key = make_connection("daily")
    hook = DailyHook(daily_conn_id=conn_id)

    def release(ids: list[str]) -> None:
        # each job finishes within the next 3 s (its duration counts from its creation)
        for i, job_id in enumerate(ids):
            created = emulator.job("daily", job_id)["timeline"][0]["at"]
            emulator.patch_job("daily", job_id, duration=time.time() - created + 1 + 2 * i / len(ids))

    async def scenario() -> tuple[list[dict[str, Any]], dict[tuple[str, str, int], int], float]:
        # held in flight (however slow submitting is on a loaded machine) until the snapshot
        ids = await submit_daily(hook, 1000, "emu_duration=600")
        triggers = [daily_trigger(conn_id, job_id) for job_id in ids]
        registered = time.monotonic()
        task = asyncio.ensure_future(run_all(triggers))
        await asyncio.sleep(6.5)  # all 1,000 jobs in flight: several sweeps happened
        in_flight = await asyncio.to_thread(counts, emulator, "daily", key)
        in_flight_seconds = time.monotonic() - registered
        await asyncio.to_thread(release, ids)
        return await task, in_flight, in_flight_seconds

    events, in_flight, seconds = run_debug(scenario)
    assert len(events) == 1000 and {e["event"] for e in events} == {"succeeded"}

    # while every job was in flight: list pages only (10 pages of 100 per sweep), no job GETs
    assert in_flight.get(("GET", JOB_ROUTE, 200), 0) == 0
    pages = in_flight.get(("GET", LIST_ROUTE, 200), 0)
    sweeps = seconds - 2.0  # first sweep at about 2 s, then about one per second
    assert 10 <= pages <= 10 * (sweeps / 0.9 + 1), (pages, seconds)

    final = counts(emulator, "daily", key)
    # then each job was fetched in full exactly once, when the list showed it finished
    assert final.get(("GET", JOB_ROUTE, 200), 0) == 1000
    assert final.get(("GET", LIST_ROUTE, 200), 0) < 200  # vs ~8,000 GETs polling one by one


def test_wasabi_waits_use_list_pages(make_connection, emulator, jobstatus_s3) -> None:
    bucket = f"hub-{uuid.uuid4().hex[:8]}"
    jobstatus_s3.create_bucket(bucket)
    conn_id, access = make_connection("wasabi_air", s3_endpoint_url=jobstatus_s3.endpoint_url)
    hook = WasabiAirHook(wasabi_air_conn_id=conn_id)
    ids = [
        wasabi_job(hook, jobstatus_s3.endpoint_url, f"hub-{i}", f"{i}.mp4?emu_duration=5", bucket=bucket)
        for i in range(30)
    ]

    async def scenario() -> tuple[list[dict[str, Any]], dict[tuple[str, str, int], int]]:
        triggers = [
            JobStatusTrigger(
                service="wasabi_air",
                conn_id=conn_id,
                job_id=job_id,
                poll_interval=1,
                deadline=time.time() + 60,
            )
            for job_id in ids
        ]
        task = asyncio.ensure_future(run_all(triggers))
        await asyncio.sleep(3.5)  # every job still in flight
        in_flight = await asyncio.to_thread(counts, emulator, "wasabi", access)
        return await task, in_flight

    events, in_flight = run_debug(scenario)
    assert {e["event"] for e in events} == {"succeeded"}
    # the state comes from the job alone: the metadata (the one output) is read only for outputs
    assert not any(e["job"]["outputs"] for e in events)
    assert in_flight.get(("GET", "/jobs/{Id}", 200), 0) == 0
    assert 1 <= in_flight.get(("GET", "/jobs", 200), 0) <= 3
    final = counts(emulator, "wasabi", access)
    assert final.get(("GET", "/jobs/{Id}", 200), 0) == 30  # once per job, when the list showed it done
    assert final.get(("GET", "/jobs", 200), 0) <= 8
    assert not any(route.endswith("/metadata") for _, route, _ in final)


class StatsSampler(threading.Thread):
    """Samples the account's request counters every 50 ms: (monotonic time, total, 429 count)."""

    def __init__(self, emulator: Any, service: str, credential: str) -> None:
        super().__init__(daemon=True)
        self.emulator, self.service, self.credential = emulator, service, credential
        self.samples: list[tuple[float, int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            rows = self.emulator.stats(service=self.service, credential=self.credential)["requests"]
            total = sum(r["count"] for r in rows)
            limited = sum(r["count"] for r in rows if r["status"] == 429)
            self.samples.append((time.monotonic(), total, limited))
            self.stop.wait(0.05)


@pytest.mark.parametrize("max_retries", [5, 0], ids=["client-retries", "hub-pause"])
def test_429_storm_pauses_every_trigger_of_the_connection(
    make_connection, emulator, max_retries: int
) -> None:
    conn_id, key = make_connection("daily", max_retries=max_retries)
    hook = DailyHook(daily_conn_id=conn_id)

    async def scenario() -> list[dict[str, Any]]:
        # three jobs with several waits each (3 < LIST_MIN_WATCHES: one GET per job per interval)
        ids = await submit_daily(hook, 3, "emu_duration=5")
        emulator.add_fault(service="daily", credential=key, kind="rate_limit", retry_after=2, count=3)
        return await run_all(
            [daily_trigger(conn_id, job_id, interval=0.5) for job_id in ids for _ in range(10)]
        )

    sampler = StatsSampler(emulator, "daily", key)
    sampler.start()
    try:
        events = run_debug(scenario)
    finally:
        sampler.stop.set()
        sampler.join()
    assert {e["event"] for e in events} == {"succeeded"}

    first_429 = next(t for t, _, limited in sampler.samples if limited)
    # requests already in flight when the first 429 came back may still land; give them 0.2 s
    settled = [total for t, total, _ in sampler.samples if first_429 + 0.2 <= t <= first_429 + 1.8]
    assert len(settled) > 10 and len(set(settled)) == 1, settled  # nothing sent during the pause
    after = [total for t, total, _ in sampler.samples if t > first_429 + 2.0]
    assert after and after[-1] > settled[-1]  # polling resumed after Retry-After
    assert sampler.samples[-1][2] == 3


def test_rate_limit_is_shared_by_every_trigger_of_a_connection(make_connection, emulator) -> None:
    conn_id, app_id = make_connection("symbl", max_requests_per_second=4)
    submit_conn, _ = make_connection("symbl", credential=app_id)  # same account, no limit
    submitter = SymblHook(symbl_conn_id=submit_conn)
    refs = [
        submitter.submit_job(audio_url=f"https://media.example/{i}.mp3?emu_duration=3") for i in range(20)
    ]
    before = emulator.stats(service="symbl", credential=app_id)["total"]
    started = time.monotonic()

    events = run_debug(
        lambda: run_all(
            [
                JobStatusTrigger(
                    service="symbl", conn_id=conn_id, job_id=ref, poll_interval=0.5, deadline=time.time() + 60
                )
                for ref in refs
            ]
        )
    )
    elapsed = time.monotonic() - started
    assert {e["event"] for e in events} == {"succeeded"}
    sent = emulator.stats(service="symbl", credential=app_id)["total"] - before
    # 20 jobs polled every 0.5 s would be 40 requests/s; the connection allows 4/s for all of them
    # (the first polls start 2 s in; +2 for the token exchange and one slot of slack)
    assert 20 <= sent <= 4 * (elapsed - 2) + 2, (sent, elapsed)


def test_permanent_and_unknown_job_errors_end_each_wait(make_connection, emulator) -> None:
    conn_id, key = make_connection("daily")
    bad_conn, _ = make_connection("daily", credential="invalid-key")
    hook = DailyHook(daily_conn_id=conn_id)
    job_id = hook.submit_job("transcript", uri="https://media.example/a.mp4?emu_duration=30")

    async def scenario() -> list[dict[str, Any]]:
        return await run_all(
            [
                daily_trigger(conn_id, "no-such-job"),
                daily_trigger(bad_conn, job_id),
                daily_trigger(conn_id, job_id, timeout=2.5),
            ]
        )

    missing, unauthorized, slow = run_debug(scenario)
    assert (
        missing["event"] == "error"
        and "not found" in missing["message"]
        and "no-such-job" in missing["message"]
    )
    assert unauthorized["event"] == "error" and "HTTP 401" in unauthorized["message"]
    assert "invalid-key" not in unauthorized["message"]
    assert slow["event"] == "timeout"
    assert "'processing'" in slow["message"] or "'submitted'" in slow["message"]

"""A throwaway PostgreSQL database for an Airflow deployment test (skips where PostgreSQL is absent).

PostgreSQL runs on 127.0.0.1:5432 with trust authentication on the development and CI machines.
Each test gets its own database, dropped afterwards, so runs never see each other's rows.

>>> with fresh_database() as url:  # postgresql+psycopg2://postgres@127.0.0.1:5432/jobstatus_1a2b...
...     env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

HOST = os.environ.get("JOBSTATUS_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("JOBSTATUS_TEST_PG_PORT", "5432"))
USER = os.environ.get("JOBSTATUS_TEST_PG_USER", "postgres")


def _admin_connection():  # type: ignore[no-untyped-def]
    try:
        import psycopg2
    except ImportError:
        pytest.skip("psycopg2 is not installed: install the test extras (make install)")
    try:
        conn = psycopg2.connect(host=HOST, port=PORT, user=USER, dbname="postgres", connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable on {HOST}:{PORT} as {USER}: {str(exc).strip()}")
    conn.autocommit = True
    return conn


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it (and its sessions) afterwards."""
    name = f"jobstatus_{uuid.uuid4().hex[:12]}"
    admin = _admin_connection()
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg2://{USER}@{HOST}:{PORT}/{name}"
        finally:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def redis_url() -> str:
    """The Redis broker URL (database 0 on 127.0.0.1:6379), or skip with the reason it is unusable."""
    host = os.environ.get("JOBSTATUS_TEST_REDIS_HOST", "127.0.0.1")
    port = int(os.environ.get("JOBSTATUS_TEST_REDIS_PORT", "6379"))
    try:
        import redis
    except ImportError:
        pytest.skip("the redis client is not installed: install the test extras (make install)")
    try:
        redis.Redis(host=host, port=port, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable on {host}:{port}: {exc}")
    return f"redis://{host}:{port}/0"

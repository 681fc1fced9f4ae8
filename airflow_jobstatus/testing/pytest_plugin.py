"""Pytest fixtures for a local S3 server (registered via the ``pytest11`` entry point).

* ``jobstatus_s3`` (session): an :class:`~airflow_jobstatus.testing.s3.S3Server` (moto) process.

The emulator's fixtures (``jobstatus_emulator``, ``emulator``, ``jobstatus_credential``) come from
the separate ``jobstatus-emulator`` distribution's own plugin; its ``jobstatus_emulator`` writes
outputs to ``jobstatus_s3`` when this plugin is loaded too.

Server logs go to a ``jobstatus-servers`` directory under pytest's base temp directory. Nothing
heavy (no Airflow, no boto3) is imported when this module is loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_jobstatus.testing.s3 import S3Server


@pytest.fixture(scope="session")
def jobstatus_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    from airflow_jobstatus.testing.s3 import S3Server

    logs = tmp_path_factory.mktemp("jobstatus-servers", numbered=True)
    server = S3Server(log_path=logs / "moto-s3.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()

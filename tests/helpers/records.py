"""Log records of one logger, each counted once, whatever handlers and propagation are configured."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

DAG_TEST_LOGGER = "airflow.sdk.definitions.dag"
DAG_TEST_DEFERRED = "[DAG TEST] running trigger in line"
"""What ``dag.test()`` logs each time a task defers and it runs the trigger in line."""


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.NOTSET)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def records_of(logger_name: str) -> Iterator[list[logging.LogRecord]]:
    """Every record ``logger_name`` (or a child) logs while open, once each.

    Counting lines in captured output instead depends on the logging setup an earlier test left
    behind: Airflow's ``dag.test()`` lines reach stdout, caplog, both or neither depending on it.
    """
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)

"""How `make test` spreads the fast tier over pytest-xdist workers (a plugin of tests/conftest.py)."""

from __future__ import annotations

import pytest

# Tests that load the CPU for tens of seconds (the benchmarks' smoke runs) and tests that count
# requests over a job's fixed duration, so that a starved event loop changes their result. Under
# pytest-xdist (`make test`: --dist loadgroup) they form one group: one worker runs them one after
# another, first, while the other workers share the rest. Measured on 2 cores: about 200 s in all,
# the share of one worker out of four.
SERIAL_GROUP = "cpu-and-timing"
SERIAL_TESTS = (
    "tests/integration/test_transfer_benchmark.py::",
    "tests/integration/test_trigger_scale_smoke.py::",
    "tests/integration/test_trigger_hub.py::",
    "tests/integration/test_push_symbl_wake.py::",
    "tests/integration/test_shared_budget.py::",
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # not an xdist worker
        return
    serial = [item for item in items if item.nodeid.startswith(SERIAL_TESTS)]
    for item in serial:
        item.add_marker(pytest.mark.xdist_group(SERIAL_GROUP))
    # first in the queue: the group's worker starts on it at once (stable sort: order kept)
    items.sort(key=lambda item: not item.nodeid.startswith(SERIAL_TESTS))

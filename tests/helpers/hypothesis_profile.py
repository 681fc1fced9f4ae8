"""Hypothesis settings for the bad-input property tests.

One settings object, applied per test (``@BAD_INPUT``) rather than loaded as the global profile,
so other tests keep their own settings. ``deadline`` turns a hang or a quadratic blow-up into a
failure; ``derandomize`` under ``CI`` makes CI runs reproducible; ``database=None`` keeps
``.hypothesis/`` example databases out of the repository.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

CI = bool(os.environ.get("CI"))
MAX_EXAMPLES = int(os.environ.get("JOBSTATUS_HYPOTHESIS_MAX_EXAMPLES", "200"))
"""Examples per property; ~200 keeps each bad-input file well under a minute on 2 cores."""
DEADLINE = timedelta(seconds=10)
"""Per example: generous, because CI machines and ours run several suites at once (load 14 on 2
cores was seen); a hang or a super-linear blow-up on a large input still fails it."""

BAD_INPUT = settings(
    max_examples=MAX_EXAMPLES,
    deadline=DEADLINE,
    derandomize=CI,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
"""Settings of every bad-input property."""

FEW = settings(BAD_INPUT, max_examples=max(10, MAX_EXAMPLES // 4))
"""For properties whose examples are expensive (operator construction) or whose space is small."""

"""The secret canary: every secret the test suite puts into a connection contains :data:`CANARY`.

A scan of everything a user or operator can read (logs, XComs, rendered fields, trigger rows,
exception messages, reprs) then finds any leak by searching for one string. The value is random
per test session and inherited by the processes the session starts (through the environment).
"""

from __future__ import annotations

import os
import secrets
import uuid

CANARY: str = os.environ.setdefault("JOBSTATUS_TEST_CANARY", f"cnry{secrets.token_hex(10)}")


def secret(label: str = "s") -> str:
    """A unique secret (API key, secret key, app secret) that carries the canary."""
    return f"{label}-{CANARY}-{uuid.uuid4().hex[:8]}"

# The README's commands. Only python3 (3.10+) and pip are needed on the machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# pytest-xdist workers for the fast tier: the tests mostly wait on servers and timers, so more
# workers than cores pays (2 cores: 4 workers). TEST_WORKERS=0 runs them in this one process.
# --dist loadgroup: one worker runs the CPU-heavy and timing-sensitive tests one after another
# (tests/helpers/xdist_schedule.py); the other workers share the rest, test by test.
TEST_WORKERS ?= 4
FAST_TIER    := tests --ignore=tests/e2e
E2E_TIER     := tests/e2e tests/test_secret_canary.py

.PHONY: install browser check test test-e2e lint typecheck typecheck-tools pytest demo bench clean

## The provider with its test extras, and the emulator (its own distribution in emulator/).
$(STAMP): pyproject.toml emulator/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./emulator -e '.[test]'
# DeepAffects' official client for the conformance tests: it pins grpcio 1.13 and protobuf 3.6
# (its realtime part only), which must not replace Airflow's; its other dependencies are in [test].
	$(BIN)/python -m pip install --quiet --no-deps 'deepaffects==1.4.1'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## benchmarks/ and scripts/ typed against the package: a renamed name fails here, not mid-benchmark.
typecheck-tools: $(STAMP)
	$(BIN)/mypy --explicit-package-bases --follow-imports=silent benchmarks scripts

## Debian's chromium for the browser test of the connection forms (it skips, saying why, where absent).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; } \
	  || echo "chromium could not be installed: the browser test will skip"; }

## The fast tier (unit, integration, conformance and the secret-canary scan), in parallel.
pytest: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(FAST_TIER) $(PYTEST_ARGS)

## Installs everything, then lint, type-check and the fast tier: about 5 minutes on 2 cores.
test: lint typecheck pytest

## The slow end-to-end tier: real Airflow processes (scheduler, triggerer, api-server, Celery
## workers, PostgreSQL, a browser), one test at a time, then the secret-canary scan of what they left.
test-e2e: $(STAMP) browser
	$(BIN)/pytest $(E2E_TIER) $(PYTEST_ARGS)

## The whole suite, as CI runs it: `make test`, the tools' types, then `make test-e2e`.
check: test typecheck-tools test-e2e

## The main job end to end on embedded defaults (emulator, local S3 server, SQLite Airflow).
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: typecheck-tools
	$(BIN)/python benchmarks/http_transport.py
	$(BIN)/python benchmarks/emulator_throughput.py
	$(BIN)/python benchmarks/trigger_scale.py
	$(BIN)/python benchmarks/transfer.py
	$(BIN)/python benchmarks/transfer_memory.py
	$(BIN)/python benchmarks/shared_limiter.py
	$(BIN)/python benchmarks/shared_status.py
	$(BIN)/python benchmarks/push_vs_poll.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-output

# Two commands for a new user:  `make demo`  and  `make test`.
# Both create the environment from uv.lock first (installing uv with pip if it is missing).
PYTHON ?= python3
# recursive (=) so that it is evaluated after the uv install step below has run
UV = $(shell command -v uv 2>/dev/null || echo $(PYTHON) -m uv)
PYTEST_ARGS ?=

.PHONY: help setup demo test test-fast lint format bench system-deps clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

setup:  ## create .venv exactly from uv.lock
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --quiet "uv>=0.5" || \
		$(PYTHON) -m pip install --quiet --user --break-system-packages "uv>=0.5"
	UV_COMPILE_BYTECODE=1 $(UV) sync --locked --extra spark

demo: setup  ## generate the synthetic retailer and run the refresh flow end to end
	$(UV) run personas demo

system-deps:  ## Debian packages the tests need (Chromium, PostgreSQL, Java 17 for Spark); as root
	@scripts/system-deps.sh

test: setup system-deps  ## run the whole test suite
	$(UV) run pytest $(PYTEST_ARGS)

test-fast: setup  ## tests without the slow and browser ones
	$(UV) run pytest -m "not slow and not browser" $(PYTEST_ARGS)

lint: setup  ## ruff
	$(UV) run ruff check .
	$(UV) run ruff format --check personas pipelines tests benchmarks

bench: setup system-deps  ## all benchmarks, one after the other (about an hour; not part of the tests)
	$(UV) run python benchmarks/bench_ingest.py --floor --repeat 2
	$(UV) run python benchmarks/bench_features.py --floor --lines-100m
	$(UV) run python benchmarks/bench_btyd.py
	$(UV) run python benchmarks/bench_report.py

clean:  ## remove generated data (lake, features, runs, published, demo exports)
	rm -rf data/lake data/features data/runs data/published data/demo

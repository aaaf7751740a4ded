# Two commands on a fresh machine: `make demo` and `make test`. Each makes .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-output
SIZES ?= 10000,100000
# `make bench BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test` for PostgreSQL
BENCH_DATABASE_URL ?=

.PHONY: demo test lint bench bench-redirects bench-workers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/newsletter demo --dir $(DEMO_DIR)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# Both cores for the tests that share nothing (a schema per PostgreSQL test, tmp_path, free
# ports), then the `serial` ones alone: they measure wall time or are the load themselves.
# The second run goes on after a failure of the first, so one CI log shows both; either fails it.
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadscope -m "not serial"; first=$$?; \
	$(BIN)/python -m pytest -m serial; second=$$?; \
	test $$first -eq 0 && test $$second -eq 0

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench --sizes $(SIZES) --chart bench/results.png \
		$(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL))

# Issue 15: /r/ redirect latency under 200 concurrent clients, and click ingestion.
bench-redirects: $(VENV)/.installed-dev
	$(BIN)/python -m bench.redirects --json bench/redirects.json \
		$(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL))

# Issue 17: queue mode with 1 and 2 `newsletter worker`s, on PostgreSQL only.
WORKERS ?= 1,2
bench-workers: $(VENV)/.installed-dev
	$(BIN)/python -m bench.workers --sizes $(SIZES) --workers $(WORKERS) --json bench/workers.json \
		--database-url $(or $(BENCH_DATABASE_URL),postgresql://postgres@127.0.0.1:5432/test)

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache

# Customer value management: one command to run, one to test.
#   make run    install, train demo models if none exist, serve on http://127.0.0.1:8000
#   make test   install, lint (ruff + mypy), run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export CVM_HOME ?= $(CURDIR)/.cvm
HOST   ?= 127.0.0.1
PORT   ?= 8000
# One BLAS/OpenMP thread per process: small requests and parallel tests thrash otherwise.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

.PHONY: install run test test-fast lint format train retrain serve ui bench bench-serve bench-train bench-spark bench-spark-data bench-plan docker-build docker-up clean help

help:
	@echo "make run | test | lint | format | train | serve | ui | bench | bench-serve | bench-train | bench-spark | bench-plan | docker-build | docker-up | clean"

# Idempotent: re-runs pip only when pyproject.toml changed since the last install.
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark,postgres]'
	@touch $@

run: install
	$(BIN)/cvm train --demo --if-missing
	$(BIN)/cvm serve --host $(HOST) --port $(PORT)

# The linters run first: a lint or type error fails the suite as a failing test does.
test: install lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: install
	$(BIN)/python -m pytest -n 2 -m "not e2e and not slow"

lint: install
	$(BIN)/ruff check models training service tests
	$(BIN)/ruff format --check models training service tests
	$(BIN)/mypy models training service

format: install
	$(BIN)/ruff check --fix models training service tests
	$(BIN)/ruff format models training service tests

train: install
	$(BIN)/cvm train --demo

# Scheduled retraining: make retrain TRANSACTIONS=exports/tx.csv CUSTOMERS=exports/customers.csv
retrain: install
	$(BIN)/cvm retrain --transactions $(TRANSACTIONS) $(if $(CUSTOMERS),--customers $(CUSTOMERS))
	$(BIN)/cvm promote

serve: install
	$(BIN)/cvm serve --host $(HOST) --port $(PORT)

ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CVM_HOME)/mlflow.db \
		--default-artifact-root $(CVM_HOME)/artifacts --host $(HOST) --port 5000




# Benchmarks print wall times and ratios against references measured in the same run.
# lifetimes 0.11.3 (the reference for CLV fits) lives in its own venv, not in the product's.
BENCH_VENV ?= .bench-venv
$(BENCH_VENV)/.installed:
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet lifetimes==0.11.3 || echo "lifetimes did not install: ratios will say n/a"
	@touch $@

bench: install $(BENCH_VENV)/.installed
	LIFETIMES_PYTHON=$(BENCH_VENV)/bin/python $(BIN)/python -m tests.benchmarks.bench_clv

# This service against `mlflow models serve` on the same registered churn model, one worker
# each, same requests (1 row at 1 and 8 connections, 1,000-row batches), then the four
# customer-view routes (1 customer, 1,000 customers per request); BENCH_SECONDS per run.
BENCH_SECONDS ?= 10
bench-serve: install
	@command -v wrk >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	  && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
	  || echo "wrk not found (apt-get install wrk): the 1 vs 2 workers comparison is skipped"
	$(BIN)/python -m tests.benchmarks.bench_serve --seconds $(BENCH_SECONDS)

# Wall time and peak RSS per training stage, CDNOW-sized (25 k customers) and 1 M customers;
# BENCH_SIZES to choose (data generated once under BENCH_DATA, default /tmp/cvm-bench-data).
BENCH_SIZES ?= 25000,1000000
bench-train: install
	$(BIN)/python -m tests.benchmarks.bench_train --sizes $(BENCH_SIZES)

# cvm train + cvm score with --engine spark (local[2]) against pandas: wall time, peak RSS of
# the driver and of the whole process tree (JVM, Python workers). Read from the environment,
# not from the variables above: BENCH_SIZES (default 1000000,5000000,10000000),
# BENCH_PANDAS_MAX (largest size pandas runs, default 1000000), BENCH_DATA, BENCH_TIMEOUT.
#   BENCH_SIZES=20000 BENCH_PANDAS_MAX=20000 make bench-spark
bench-spark: install
	$(BIN)/python -m tests.benchmarks.bench_spark

# Retention plans against the truth of a simulated campaign: the plan's true incremental profit
# against churn-first and value-at-risk-first targeting (BENCH_SEEDS, BENCH_CUSTOMERS).
BENCH_SEEDS ?= 5,6,7
BENCH_CUSTOMERS ?= 10000
bench-plan: install
	OMP_NUM_THREADS=1 $(BIN)/python -m tests.benchmarks.bench_plan --customers $(BENCH_CUSTOMERS) --seeds $(BENCH_SEEDS)

# Only the data of bench-spark (chunks of 1 M customers, generated once under BENCH_DATA).
bench-spark-data: install
	$(BIN)/python -m tests.benchmarks.bench_spark --data-only

# The image and the compose stack (PostgreSQL, MLflow on it, the service, a one-shot train
# job). BASE_IMAGE: any image with Python >= 3.11 (default python:3.11-slim);
# DOCKER_NETWORK=host when pip needs it.
BASE_IMAGE ?= python:3.11-slim
DOCKER_NETWORK ?= default
docker-build:
	docker build --network $(DOCKER_NETWORK) --build-arg BASE_IMAGE=$(BASE_IMAGE) -t cvm:latest .

docker-up:
	docker compose up --build

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info

# lakeplane — `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
READERS_STAMP := .venv-readers/.installed
SPARK_S3_JARS := .cache/spark-s3

.DEFAULT_GOAL := help
.PHONY: help install readers spark-jars demo test lint typecheck bench bench-spark clean system-deps

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install lakeplane with its dev extras

$(READERS_STAMP): tests/interop/readers-requirements.txt scripts/readers-venv.sh
	bash scripts/readers-venv.sh $(PYTHON)

readers: $(READERS_STAMP)  ## Create .venv-readers: the independent Iceberg readers of the interop tests

$(SPARK_S3_JARS)/hadoop-aws-3.3.1.jar: scripts/spark_s3_jars.py
	$(BIN)/python scripts/spark_s3_jars.py $(SPARK_S3_JARS)

spark-jars: $(STAMP) $(SPARK_S3_JARS)/hadoop-aws-3.3.1.jar  ## Fetch the S3 connector jars for a local Spark (from PyPI) into .cache/spark-s3

system-deps:  ## Install PostgreSQL server binaries and Java if missing (needs root and apt)
	@bash scripts/system-deps.sh

demo: $(STAMP)  ## Build demo/ afresh and run the nightly pipeline on the embedded engine
	$(BIN)/lakeplane demo demo --days 3 --impressions 50000

test: $(STAMP) system-deps $(READERS_STAMP) spark-jars  ## Run every test (DuckDB, Spark, S3 via moto, PostgreSQL)
	$(BIN)/python -m pytest -q tests/engines/test_bounded_memory.py  # alone: it measures a run's own peak
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --ignore=tests/engines/test_bounded_memory.py

lint: $(STAMP)  ## ruff (lint and format check) and mypy on src/ and tests/
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/lakeplane tests

typecheck: $(STAMP)  ## mypy on src/ and tests/
	$(BIN)/mypy src/lakeplane tests

bench: $(STAMP)  ## The nightly-pipeline benchmark on ~1 GB (see benchmarks/README.md)
	$(BIN)/python benchmarks/bench_nightly.py

bench-spark: $(STAMP)  ## Spark against hand-written PySpark, skew, transient cluster start
	$(BIN)/python benchmarks/bench_spark.py

clean:  ## Remove .venv, demo/ and caches
	rm -rf $(VENV) .venv-readers .cache demo .pytest_cache .mypy_cache .ruff_cache benchmarks/.work

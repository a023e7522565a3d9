# Quick start: `make run` (demo workflow) and `make test` (test suite); each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
BIN := $(VENV)/bin

.PHONY: run test test-fast dna573 lint clean

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

run: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m "not workflow"

dna573: $(BIN)/.installed
	$(BIN)/snakemake --configfile config/dna573_cpu.yaml --cores $(CORES) --resources gpu=1

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile rules/*.smk
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake

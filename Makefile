# HaloBuzz: `make run` serves the embedded default on http://127.0.0.1:5010; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint format migrate seed bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing HaloBuzz into $(VENV) …"
	$(BIN)/pip install --quiet --editable .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.installed
	@echo "installing development dependencies …"
	$(BIN)/pip install --quiet --editable '.[dev]'
	@touch $@

run: $(VENV)/.installed
	bash scripts/build-web-assets.sh
	$(BIN)/halobuzz migrate
	$(BIN)/halobuzz seed
	$(BIN)/halobuzz serve --no-migrate

test: $(VENV)/.dev-installed
	bash scripts/system-deps.sh
	bash scripts/build-web-assets.sh
	$(BIN)/pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src/halobuzz

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(VENV)/.installed
	$(BIN)/halobuzz migrate

seed: $(VENV)/.installed
	$(BIN)/halobuzz seed

bench: $(VENV)/.dev-installed
	bash bench/run.sh

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

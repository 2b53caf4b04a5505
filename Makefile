PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -e '.[test]'
	touch $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python samples/demo.py

# The PostgreSQL tests run against a throwaway cluster (initdb in a temp dir, loopback,
# a free port), stopped and deleted when pytest ends: see tests/pg_cluster.py.
test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tests/pg_cluster.py -- $(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.installed
	$(BIN)/pip install -e '.[bench]'
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/host.py
	$(BIN)/python bench/compare.py

clean:
	rm -rf $(VENV) .jsflow build dist *.egg-info

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

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

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

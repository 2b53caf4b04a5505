PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export NO_MKDOCS_2_WARNING := 1

.PHONY: demo test docs lint bench clean

# The venv is made without ensurepip (its bundled pip is installed and byte-compiled, seconds
# on a small machine); pip itself comes from the index through the outer pip when that
# pip knows --python (22.3+), else from ensurepip.
$(BIN)/activate:
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python install -q --disable-pip-version-check --no-compile pip \
		|| $(BIN)/python -m ensurepip

# Stamps: `make demo` installs only what running jsflow needs, `make docs` adds the docs
# extra, `make test` the test extra (which includes docs). Each is redone when pyproject.toml
# changes.
# --no-compile: modules are byte-compiled when first imported, not all of them up front.
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check --no-compile

$(VENV)/.runtime: $(BIN)/activate pyproject.toml
	$(PIP_INSTALL) -e .
	touch $(VENV)/.runtime

$(VENV)/.docs: $(BIN)/activate pyproject.toml
	$(PIP_INSTALL) -e '.[docs]'
	touch $(VENV)/.runtime $(VENV)/.docs

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(PIP_INSTALL) -e '.[test]'
	touch $(VENV)/.runtime $(VENV)/.docs $(VENV)/.installed

demo: $(VENV)/.runtime
	$(BIN)/python samples/demo.py

# The PostgreSQL tests run against a throwaway cluster (initdb in a temp dir, loopback,
# a free port), stopped and deleted when pytest ends: see tests/pg_cluster.py.
test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/python tests/pg_cluster.py -- $(BIN)/python -m pytest -q

# The documentation site, built offline into site/ (open site/index.html).
docs: $(VENV)/.docs
	$(BIN)/mkdocs build --strict

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every figure of issue 22 with its target: jsflow vs DBOS on SQLite and on a throwaway
# PostgreSQL cluster with fsync on, the HTTP server, and where the time goes by layer.
bench: $(VENV)/.installed
	$(PIP_INSTALL) -e '.[bench]'
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/host.py
	$(BIN)/python bench/compare.py
	$(BIN)/python tests/pg_cluster.py --durable -- $(BIN)/python bench/compare.py --db ENV
	$(BIN)/python bench/server.py
	$(BIN)/python bench/profile.py

clean:
	rm -rf $(VENV) .jsflow build dist site *.egg-info

# Two commands on a fresh machine with Python 3.10+ and pip:
#   make run    the example training with its default backends
#   make test   the whole test suite
# Both create .venv and install what they need (torch constrained by constraints.txt).

PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
PY := $(VENV)/bin/python
# pip's own progress (what it collects, downloads and installs) stays visible: the
# first install takes minutes (~2 GB). PIP_FLAGS=--quiet brings back the silence.
PIP_FLAGS ?=
PIP := $(PY) -m pip install $(PIP_FLAGS) -c $(CONSTRAINTS)

.PHONY: run test bench install postgres clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "==> [1/3] creating the virtualenv $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] installing torch as $(CONSTRAINTS) pins it (the largest download)"
	$(PIP) torch
	@echo "==> [3/3] installing unilog (editable) with its test and example extras:"
	@echo "    every backend SDK, Lightning, Hydra, pytest (a few minutes on a fresh machine)"
	$(PIP) -e '.[test,examples]'
	touch $@
	@echo "==> installed in $(VENV): run its programs as $(VENV)/bin/unilog, ... or first: source $(VENV)/bin/activate"

install: $(VENV)/.installed

run: install
	$(PY) examples/train.py

# The sweep tests start a real PostgreSQL server (tests/postgres_server.py): Debian's
# postgresql package, installed here when its initdb is missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "==> PostgreSQL is installed (for the sweep tests)"; \
	else \
	  echo "==> installing Debian's postgresql (the sweep tests start a real server)"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	fi

test: install postgres
	$(PY) -m pytest

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache

# Two commands on a fresh machine with Python 3.10+ and pip:
#   make run    the example training with its default backends
#   make test   the whole test suite
# Both create .venv and install what they need (torch constrained by constraints.txt).

PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet -c $(CONSTRAINTS)

.PHONY: run test bench install clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[test,examples]'
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) examples/train.py

test: install
	$(PY) -m pytest

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache

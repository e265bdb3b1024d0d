# The two user commands (see README.md):
#   make repro   set up .venv if missing, then run the pipeline (dvc repro) on the embedded default
#   make test    set up .venv if missing, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: repro test setup clean-venv

repro: $(VENV)/.installed
	$(BIN)/dvc repro

test: $(VENV)/.installed
	$(BIN)/python -m pytest

setup: $(VENV)/.installed

# Rebuilt when the pins change; constraints.txt pins the whole resolved set.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

clean-venv:
	rm -rf $(VENV)

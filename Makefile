# Two commands for a fresh machine (see README.md):
#   make all    the whole comparison on the embedded defaults: train every method, then evaluate
#   make test   the test suite
# Each creates its own virtual environment in .venv from the pinned requirements.
VENV   := .venv
PYTHON := $(VENV)/bin/python
SEEDS  ?= 1

.PHONY: all test pipeline study clean-runs

$(VENV)/installed: requirements.txt requirements-test.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --disable-pip-version-check --quiet -r requirements.txt -r requirements-test.txt
	touch $@

all: $(VENV)/installed
	$(PYTHON) train.py --method teacher
	$(PYTHON) train.py --method odd
	$(PYTHON) train.py --method even
	$(PYTHON) train.py --method lora
	$(PYTHON) train.py --method lora-kd
	$(PYTHON) evaluate.py

test: $(VENV)/installed
	$(PYTHON) -m pytest tests

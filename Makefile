# make run  - create .venv, install, run today's daily batch on the offline defaults
# make test - create .venv, install, run the test suite
# make lint - ruff and mypy, as configured in pyproject.toml
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: install run test lint serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	# torch pinned first (CPU build here), so nothing pulls a CUDA torch
	$(VENV)/bin/python -m pip install -q torch==2.13.0
	$(VENV)/bin/python -m pip install -q -e '.[test,local]'
	# spandrel without torchvision (see the test extra in pyproject.toml)
	$(VENV)/bin/python -m pip install -q --no-deps 'spandrel>=0.4,<0.5'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/content-pipeline run daily

test: $(STAMP)
	$(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

serve: $(STAMP)
	$(VENV)/bin/content-pipeline serve

clean:
	rm -rf $(VENV) output .prefect *.egg-info

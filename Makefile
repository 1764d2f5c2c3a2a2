# make run  - create .venv, install, run today's daily batch on the offline defaults
# make test - create .venv, install, run the test suite
# make lint - ruff (rules, McCabe <= 10, format), mypy, import-linter layers, no cycles (pyproject.toml)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: install lock check-lock run test lint serve clean

# The environment is locked: requirements.lock (made by `make lock` from pyproject.toml, with
# hashes, resolved for every platform) is what a fresh install gets; `make check-lock` (run by
# .ci/run) fails when pyproject.toml asks for something the lock does not hold.
# torch is the one package outside the lock: pinned in pyproject.toml and installed first as
# its CPU build (this machine's wheel), so that nothing pulls a CUDA torch and its GBs of
# nvidia-* packages (the lock leaves those out: `--no-emit-package` below).
LOCK := requirements.lock
NOT_LOCKED := torch triton cuda-bindings cuda-pathfinder cuda-toolkit nvidia-cublas nvidia-cuda-cupti \
	nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand \
	nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-nccl-cu13 nvidia-nvjitlink \
	nvidia-nvshmem-cu13 nvidia-nvtx

# The project's own bytecode, written ahead (pip does this for installed packages, not for an
# editable install): where PYTHONDONTWRITEBYTECODE is set, every command would otherwise
# compile its ~28,000 lines again at start-up. Up to date, it only compares timestamps.
PACKAGES := cli config deployments domain flows generation imaging policy providers publishing reporting storage tasks wiring
COMPILE = $(VENV)/bin/python -m compileall -q -j 0 $(PACKAGES)

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	# torch pinned first (CPU build here), so nothing pulls a CUDA torch
	$(VENV)/bin/python -m pip install -q torch==2.13.0
	$(VENV)/bin/python -m pip install -q --no-deps --require-hashes -r $(LOCK)
	$(VENV)/bin/python -m pip install -q --no-deps -e .
	# spandrel without torchvision (see the test extra in pyproject.toml)
	$(VENV)/bin/python -m pip install -q --no-deps 'spandrel==0.4.2'
	$(COMPILE)
	touch $(STAMP)

install: $(STAMP)

# refresh the lock after editing pyproject.toml's dependencies (needs the registry)
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q 'uv==0.13.9'
	.venv-lock/bin/uv pip compile pyproject.toml --extra test --extra local --universal --python-version 3.11 \
		--generate-hashes --index-url https://pypi.org/simple --no-header --quiet \
		--override .ci/lock-overrides.txt $(addprefix --no-emit-package ,$(NOT_LOCKED)) -o $(LOCK)

check-lock: $(STAMP)
	$(VENV)/bin/python .ci/check_lock.py pyproject.toml $(LOCK)

# exit code 1 = images not done as real content (offline: placeholders); see README "Exit codes"
run: $(STAMP)
	@$(COMPILE)
	@$(VENV)/bin/content-pipeline run daily; code=$$?; \
	if [ $$code -eq 1 ]; then echo "make run: the batch is not complete (exit code 1: what to do is on the line above; README 'Exit codes and resume')"; \
	elif [ $$code -ne 0 ]; then exit $$code; fi

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python .ci/check_cycles.py

serve: $(STAMP)
	$(VENV)/bin/content-pipeline serve

clean:
	-[ -x $(VENV)/bin/content-pipeline ] && $(VENV)/bin/content-pipeline server stop
	rm -rf $(VENV) output .prefect *.egg-info

# plausigrad: every target bootstraps .venv from a Python >= 3.12 first.
# Interpreter search: python3.13 / python3.12 on PATH (each is *run*, since pyenv shims
# exist but refuse to run unless selected), then pyenv's installed versions.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# Tests run in two worker processes (pytest-xdist; one per core of the reference machine), each
# test file on one worker (--dist loadfile: a file's module fixtures and shared builds stay
# together). WORKERS=0 runs them in this process.
WORKERS ?= 2
XDIST := $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadfile)

.PHONY: all venv test test-fast test-cuda demo bench clean

all: test

define find_python
for c in python3.13 python3.12 $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
  if "$$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then echo "$$c"; exit 0; fi; \
done; exit 1
endef

$(PY):
	@py=$$( $(find_python) ) || { echo "error: no Python >= 3.12 found (tried python3.13, python3.12, ~/.pyenv/versions/3.1x)" >&2; exit 2; }; \
	echo "creating $(VENV) with $$py"; "$$py" -m venv $(VENV)

$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

venv: $(STAMP)

# Fast and slow tests (the slow ones compile C++ standalone and train on the bundled subset).
test: $(STAMP)
	$(PY) -m pytest -ra $(XDIST) $(PYTEST_ARGS)

# Quick loop for development: skips tests marked slow.
test-fast: $(STAMP)
	$(PY) -m pytest -ra -m "not slow" $(XDIST) $(PYTEST_ARGS)

# Every CUDA compile test (BioGrad, EMSTDP, SSNN-BP; 10-20 min each here). make test runs only
# the fast CUDA checks (preferences, generated code).
test-cuda: $(STAMP)
	PLAUSIGRAD_ALL_CUDA=1 $(PY) -m pytest -ra -m cuda $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/plausigrad demo --out results/demo

# Timing ratios in one run (C++ standalone vs runtime vs a per-sample net.run loop; exact vs
# factorised eligibility). Uses full MNIST from ../shared when it is there.
BENCH_DATA ?= $(wildcard ../shared/data/mnist)
bench: $(STAMP)
	$(PY) -m plausigrad.protocols.bench $(if $(BENCH_DATA),--data-dir $(BENCH_DATA),)

clean:
	rm -rf $(VENV) results build *.egg-info

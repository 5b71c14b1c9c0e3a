# Two commands on a fresh machine:  make book  and  make test  (each sets itself up).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
NB_CACHE := _build/.jupyter_cache
# Offline data sets the quick profiles read (fetched only if missing, md5-checked).
QUICK_DATA := mnist usps mnist_m notmnist
# Every developer and CI machine has the offline copies beside the checkout.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/MD5SUMS),)
export LAUTUM_DATA ?= $(SHARED_DATA)
endif
export PATH := $(BIN):$(PATH)
# CPU kernels pinned to AVX2 (also the default of `import lautum`): records, tests and the
# book's executions reproduce bit for bit on any x86 CPU. `native` lifts the pin.
export LAUTUM_KERNELS ?= avx2
# Derived data and cached source models live in the build folder, so a stale model
# trained by older code is never picked up; `make clean` removes them.
export LAUTUM_CACHE ?= $(abspath _build/cache)
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider

.PHONY: help setup data lint unit execute book book-strict test test-browser test-cluster student bench clean _build/environment.md

help:
	@echo "make book   set up, fetch missing data, execute every notebook (quick profile), build _build/html"
	@echo "make test   set up, unit tests + doctests, nbval on every notebook, strict book build"
	@echo "make test-browser  the built book in headless Chromium, offline (after make book/test)"
	@echo "make test-cluster  sweeps as SLURM job arrays on a single-node SLURM it starts and tears down"
	@echo "make student  student edition without solutions: _build/student/html and notebooks.zip"
	@echo "make bench  speed benchmarks (lautum bench)"
	@echo "make clean  remove _build (keeps .venv)"

# The venv is rebuilt only when the pins or the package metadata change.
$(STAMP): requirements/pinned.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/pinned.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	# A kernelspec pointing at this venv's python, so papermill/nbval/the book use it.
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	touch $@

setup: $(STAMP)

data: setup
	$(BIN)/lautum data fetch $(QUICK_DATA)

lint: setup
	$(BIN)/ruff check lautum tests tools conftest.py

unit: setup
	$(PYTEST) lautum tests

# One execution of every notebook: nbval runs it, and the passing ones are stored
# with their outputs in the jupyter-cache that the book build reads. Live quick-run
# records and cached models are cleared first: the quick profiles always compute.
execute: data
	rm -rf $(NB_CACHE) _build/live-results $(LAUTUM_CACHE)/models
	$(PYTEST) notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=600 --nb-cache $(NB_CACHE)

_build/environment.md: setup
	$(BIN)/lautum env --output $@

book: execute _build/environment.md
	$(BIN)/jupyter-book build .
	@echo "book: $(abspath _build/html/index.html)"

# A clean strict build: stale doctrees would hide warnings (-W is blind on rebuilds).
book-strict: execute
	rm -rf _build/html _build/.doctrees
	$(BIN)/lautum env --output _build/environment.md
	$(BIN)/jupyter-book build . -n -W --keep-going

test: lint unit book-strict

# A real single-node SLURM on 127.0.0.1 (installed with apt as root), torn down by PID even on
# failure; without SLURM and without root it skips with one line. The outer timeout turns a hang
# into a failure, and the script still tears the cluster down on its SIGTERM.
test-cluster: setup
	timeout 900 $(BIN)/python tools/slurm_cluster.py -- $(PYTEST) tests/cluster

# The built book as a reader sees it: every page in headless Chromium from file://, network
# blocked (tools/browser_check.py). Reads _build/html, never executes a notebook; skips with
# a reason where Debian's chromium is missing (unless LAUTUM_REQUIRE_BROWSER=1, as in .ci/run).
test-browser: setup
	@test -f _build/html/index.html || { echo "test-browser: _build/html/index.html not found; run make book (or make test) first"; exit 2; }
	$(BIN)/python -m tools.remote_assets _build/html
	$(PYTEST) tests/test_browser_check.py
	$(BIN)/python -m tools.browser_check _build/html --screenshots _build/screenshots

# Student edition: every exercise solution removed, not hidden (tools/student_edition.py).
# Built from the executed chapters that make book / make test left in $(NB_CACHE): nothing is
# executed again. Writes _build/student/html and _build/student/notebooks.zip (unexecuted).
student: setup
	$(BIN)/python -m tools.student_edition --root . --out _build/student --nb-cache $(NB_CACHE)

bench: setup
	$(BIN)/lautum bench

clean:
	rm -rf _build

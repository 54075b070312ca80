# `make test`   : set-up (.venv with torch and the project) + every test, slow ones included.
# `make report` : set-up + data + training of the preset when its cache is missing + analysis + render
#                 (with Quarto when `quarto` is on PATH, else the offline engine; the command says which).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DYNLOSS := $(VENV)/bin/dynloss
STAMP := $(VENV)/.installed-stamp
# the preset the report shows: `paper` when its caches exist, else the embedded default
PRESET ?= $(shell test -d "$${DYNLOSS_DATA_DIR:-data}/cache/paper" && echo paper || echo fmnist-mini)
PYTEST_ARGS ?=
# torch pins: 2.14.1 on x86_64; on aarch64 the matching torchvision wheel exists for 2.9.1
TORCH_PKGS ?= $(if $(filter aarch64 arm64,$(shell uname -m)),torch==2.9.1 torchvision==0.24.1,torch==2.14.1 torchvision==0.29.1)

.PHONY: setup setup-report test test-fast report data train analyze render audit bench bench-report clean

# two stamps: the report needs the project and its report engine; the tests also need pytest & co.
# (one pip call each, so that pip resolves once). pip byte-compiles on one core; compileall does
# it on every core instead, and skips what no command of the project imports: the libraries' test
# suites and the installers (pip, setuptools) and networkx (9.4k of 13.6k files, 22 s instead of
# 41 s). A file that does not compile, such as torch's Python-3.12-only test helper, is left to
# the interpreter, as pip leaves it.
REPORT_STAMP := $(VENV)/.installed-report-stamp
PIP_INSTALL := $(PY) -m pip install -q --disable-pip-version-check --no-compile
BYTE_COMPILE := $(PY) -m compileall -q -j 0 -x '/(tests|pip|setuptools|networkx)/' $(VENV)/lib > /dev/null 2>&1 || true

setup: $(STAMP)

setup-report: $(REPORT_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) $(TORCH_PKGS) -e '.[test]'
	$(BYTE_COMPILE)
	touch $(STAMP) $(REPORT_STAMP)

$(REPORT_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) $(TORCH_PKGS) -e '.[report]'
	$(BYTE_COMPILE)
	touch $(REPORT_STAMP)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m 'not slow' $(PYTEST_ARGS)

data:
	bash scripts/ensure_data.sh $(PRESET)

train: setup-report data
	$(DYNLOSS) train --preset $(PRESET)

analyze: setup-report
	$(DYNLOSS) analyze --preset $(PRESET)

# ENGINE=auto (Quarto when on PATH, else offline), quarto or offline
ENGINE ?= auto

render: setup-report
	$(DYNLOSS) report --preset $(PRESET) --engine $(ENGINE)

audit: setup-report
	$(DYNLOSS) audit --preset $(PRESET)

report: setup-report data
	$(DYNLOSS) train --preset $(PRESET)
	$(DYNLOSS) analyze --preset $(PRESET)
	$(DYNLOSS) audit --save --preset $(PRESET) > /dev/null
	$(DYNLOSS) report --preset $(PRESET) --engine $(ENGINE)

bench: setup
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/analysis_speed.py

# both report engines on the preset's results (run `make report` first)
bench-report: setup
	$(PY) benchmarks/report_engines.py --preset $(PRESET)

clean:
	rm -rf _output reports/.render .pytest_cache .quarto .jupyter_cache reports/.jupyter_cache _quarto-book

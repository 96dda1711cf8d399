# `make test` on a fresh clone: builds .venv from requirements*.txt, installs ernie_m, runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
THREADS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: test env demo clean

env: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

test: env
	OMP_NUM_THREADS=$(THREADS) $(PY) -m pytest -q

# The main job: corpus from registry packages, tokenizer, ERNIE-M + baselines pretrained, evaluated, reported.
demo: env
	OMP_NUM_THREADS=$(THREADS) $(PY) -m tools.demo.run --output_dir outputs/demo

clean:
	rm -rf $(VENV) .pytest_cache

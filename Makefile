# `make test` on a fresh clone: builds .venv from requirements*.txt, installs ernie_m, runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
THREADS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: test env demo clean

NATIVE := ernie_m/kernels/native/build/ernie_m_ops.stamp

env: $(VENV)/.installed $(NATIVE)

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# The C++ CPU operators (ernie_m/kernels/native). Without a compiler the model runs Paddle's ops and says so.
$(NATIVE): $(VENV)/.installed ernie_m/kernels/native/ernie_m_ops.cc
	$(PY) -m ernie_m.kernels.native 2>$(VENV)/native-build.log || \
		echo "ernie_m: the native CPU kernels did not build (see $(VENV)/native-build.log); Paddle's ops will be used"

test: env
	OMP_NUM_THREADS=$(THREADS) $(PY) -m pytest -q

# The main job: corpus from registry packages, tokenizer, ERNIE-M + baselines pretrained, evaluated, reported.
demo: env
	OMP_NUM_THREADS=$(THREADS) $(PY) -m tools.demo.run --output_dir outputs/demo

clean:
	rm -rf $(VENV) .pytest_cache

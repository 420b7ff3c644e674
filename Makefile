# atss_core: `make setup` builds the environment and the extension, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
REQS_STAMP := $(VENV)/.requirements-installed
BUILD_STAMP := atss_core/.extension-built
CSRC := $(shell find csrc -type f 2>/dev/null) setup.py
PYTEST_ARGS ?=
DATA ?= synthetic

.PHONY: setup build test cuda-check gpu-check device-prepare benchmark bench demo mutation ablation clean

setup: $(BUILD_STAMP)

# the venv and the pinned requirements (re-installed when a requirements file changes)
$(REQS_STAMP): requirements.txt requirements-test.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned requirements into $(VENV) (PyTorch is large: minutes on a first run) ..."
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	@touch $@

# atss_core._C, rebuilt when csrc/ or setup.py change; also registers the package (editable)
$(BUILD_STAMP): $(REQS_STAMP) $(CSRC)
	@echo "building atss_core._C (a few minutes on 2 cores the first time) ..."
	MAX_JOBS=$${MAX_JOBS:-2} $(PY) -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps -e .
	$(PY) -c "import torch; from atss_core import _C; print('atss_core._C built; CUDA kernels:', _C.built_with_cuda())"
	@touch $@

build: $(BUILD_STAMP)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

# compile-check the CUDA kernels (no GPU needed); cached by a hash of csrc/
cuda-check: $(REQS_STAMP)
	PYTHON=$(PY) bash .ci/cuda_compile_check.sh

# on a machine with a GPU: CUDA build, CUDA tests, GPU benchmarks, GPU-vs-CPU training check
# (tools/gpu_check.py); on one without, it stops at once with a message
gpu-check: setup
	$(PY) tools/gpu_check.py --json output/gpu_check.json

# wheels for a lent GPU machine without a package registry (yacs, pycocotools, pytest and what
# they need beyond its preinstalled torch/numpy/...), for CPython 3.12, in device_wheels/;
# checks the set is complete; needs the network. On that machine: bash tools/device_check.sh
device-prepare: $(REQS_STAMP)
	$(PY) tools/device_prepare.py

# the quickstart: data -> CPU training -> COCO AP -> pictures, curves, metrics
# (DATA=synthetic: generated shapes; DATA=real: the raccoon photographs in data/raccoon)
demo: setup
	$(PY) tools/quickstart.py --data $(DATA)

# plants each bug of tools/dev/mutation_check.py in a copy of the project and runs the tests
# that guard it (about 10 minutes on 2 cores; not part of CI)
mutation: setup
	$(PY) tools/dev/mutation_check.py --json output/mutation.json

# the paper's assignment ablation (tools/ablation.py) on any config: a grid of train_net runs,
# then a table, a chart and JSON in ABLATION_OUT (finished runs are skipped on a re-run)
ABLATION_CONFIG ?= configs/quickstart/atss_R_18_raccoon.yaml
ABLATION_OUT ?= output/ablation
ABLATION_ARGS ?= --positive-types ATSS SSC IoU --regression-types BOX --seeds 0 1 2
ablation: setup
	$(PY) tools/ablation.py --config-file $(ABLATION_CONFIG) --output $(ABLATION_OUT) --paper $(ABLATION_ARGS)

benchmark: setup
	$(PY) tools/benchmark.py --ops --json output/benchmark_ops.json

# the detector against torchvision FCOS / RetinaNet and the machine's limits (minutes on 2 cores);
# rewrites the README's model-benchmark table
bench: setup
	$(PY) tools/benchmark.py --model --sizes 800x1216 800x1333 --evaluation --json output/benchmark_model.json --readme

clean:
	rm -rf build $(BUILD_STAMP) atss_core/_C*.so *.egg-info

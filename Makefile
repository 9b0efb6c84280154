# Restora: the two commands people need are `make demo` and `make test`.
# Every target creates/updates the virtualenv first (idempotent; pinned by constraints.txt).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DATA ?= ../shared/data
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: help install demo test test-fast lint eval bench train clean

help:  ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# torch (CPU build, lying on this machine's disk) is only for training/ and its smoke tests.
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install --quiet --upgrade "pip>=24"
	$(PIP) install --quiet -c constraints.txt -e '.[dev,train]'
	@touch $@

install: $(VENV)/.installed  ## create the virtualenv and install Restora (pinned)

demo: install  ## restore the bundled sample clip (samples/), print where the output is, make a before/after still
	@mkdir -p out/demo
	$(VENV)/bin/restora restore samples/bbb_sample.mp4 -o out/demo/bbb_sample.restored.mp4 --scale 2
	$(VENV)/bin/restora compare samples/bbb_sample.mp4 out/demo/bbb_sample.restored.mp4 -o out/demo/before_after.png
	@echo "demo: before/after still: out/demo/before_after.png (left: bicubic x2, right: Restora x2)"

test: install triton-venv  ## run the whole test suite (unit, real clips, Prefect flow, real Triton server, k8s)
	$(PY) -m pytest -q

test-fast: install  ## unit tests only (no slow, no Triton)
	$(PY) -m pytest -q -m "not slow and not triton"

lint: install  ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

eval: install  ## every model: Set5 SR PSNR/SSIM-Y, artifact removal on classic5 JPEG and H.264 (benchmarks/results/eval.json)
	@mkdir -p benchmarks/results
	$(VENV)/bin/restora eval --json benchmarks/results/eval.json

bench: install triton-venv  ## speed/quality benchmarks (ratios against a baseline in the same run)
	$(PY) -m benchmarks.inference --quick
	$(PY) -m benchmarks.quality
	$(PY) -m benchmarks.int8

train: install  ## re-train the SR models from ../shared/data and re-package them into triton_models/
	for s in 2 4; do \
	  $(PY) -m training.train_sr --scale $$s --iters 8000 --out training/runs/sr_x$$s && \
	  $(PY) -m training.package_model --onnx training/runs/sr_x$$s/model.onnx --name sr_x$$s --scale $$s --channels 1 \
	    --metrics-json training/runs/sr_x$$s/metrics.json \
	    --description "Fidelity super-resolution x$$s on luma (ESPCN-style with bicubic residual); chroma is resampled bicubically by the sr stage"; \
	done

clean:  ## remove build outputs (keeps the virtualenvs)
	rm -rf out build .pytest_cache .mypy_cache .ruff_cache

include $(wildcard mk/*.mk)

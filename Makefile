# Restora: the two commands people need are `make demo` and `make test`.
# Every target creates/updates the virtualenv first (idempotent; pinned by constraints.txt).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DATA ?= ../shared/data
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: help install demo test test-fast lint eval bench train train-sr train-int8 train-deblock train-deblock-heavy requantize-int8 calibrate-deblock train-denoise train-joint train-vsr clean

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

lint: install  ## ruff (lint and format) + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

eval: install  ## every model: Set5 SR PSNR/SSIM-Y, artifact removal on classic5 JPEG and H.264 (benchmarks/results/eval.json)
	@mkdir -p benchmarks/results
	$(VENV)/bin/restora eval --json benchmarks/results/eval.json

bench: install triton-venv  ## speed/quality benchmarks (ratios against a baseline in the same run)
	$(PY) -m benchmarks.inference --quick
	$(PY) -m benchmarks.quality
	$(PY) -m benchmarks.int8
	$(PY) -m benchmarks.vsr_flow
	$(PY) -m benchmarks.signal_path
	$(PY) -m benchmarks.temporal_stages

train: train-sr train-int8 train-deblock train-deblock-heavy train-denoise train-joint train-vsr  ## re-train every model from ../shared/data and re-package it into triton_models/ (hours on 2 CPU cores)

PACKAGE := $(PY) -m training.package_model --channels 1

train-sr: install  ## sr_x2, sr_x4 (version 2): 8000 iterations from scratch, continued with larger batches at a lower rate, then with LeakyReLU (fused on the CPU)
	$(PY) -m training.train_sr --scale 2 --iters 8000 --out training/runs/sr_x2_stage1
	$(PY) -m training.train_sr --scale 2 --iters 8000 --batch 64 --patch 32 --lr 5e-4 --eval-every 1000 \
	  --init training/runs/sr_x2_stage1/model.pt --out training/runs/sr_x2
	$(PY) -m training.train_sr --scale 4 --iters 8000 --out training/runs/sr_x4_stage1
	$(PY) -m training.train_sr --scale 4 --iters 15000 --batch 64 --lr 5e-4 --eval-every 1500 \
	  --init training/runs/sr_x4_stage1/model.pt --out training/runs/sr_x4
	for s in 2 4; do \
	  $(PY) -m training.train_sr --scale $$s --iters 4000 --lr 5e-4 --act lrelu \
	    --init training/runs/sr_x$$s/model.pt --out training/runs/sr_x$${s}_lrelu || exit 1; \
	done
	$(PY) -m training.train_sr --scale 4 --iters 5000 --batch 64 --lr 2.5e-4 --eval-every 1000 --threads 1 --act lrelu \
	  --init training/runs/sr_x4_lrelu/model.pt --out training/runs/sr_x4_lrelu2
	for run in sr_x2_lrelu:2 sr_x4_lrelu2:4; do s=$${run#*:}; r=$${run%:*}; \
	  $(PACKAGE) --onnx training/runs/$$r/model.onnx --name sr_x$$s --scale $$s --version 2 \
	    --metrics-json training/runs/$$r/metrics.json \
	    --description "Fidelity super-resolution x$$s on luma (ESPCN-style with bicubic residual); chroma is resampled bicubically by the sr stage"; \
	done

train-int8: install  ## sr_x2_int8, sr_x4_int8 (version 3): ReLU twins fine-tuned from the shipped FP32 weights, then static INT8 with 7-bit weights
	for s in 2 4; do \
	  $(PY) -m training.train_sr --scale $$s --iters 4000 --lr 1e-3 --act relu --name sr_x$${s}_relu \
	    --init triton_models/sr_x$$s/2/model.onnx --out training/runs/sr_x$${s}_relu && \
	  $(PY) -m training.quantize --model sr_x$$s --src training/runs/sr_x$${s}_relu/model.onnx \
	    --name sr_x$${s}_int8 --out training/runs/sr_x$${s}_int8 && \
	  $(PACKAGE) --onnx training/runs/sr_x$${s}_int8/model.onnx --name sr_x$${s}_int8 --scale $$s --version 3 \
	    --metrics-json training/runs/sr_x$${s}_int8/metrics.json --tensorrt none \
	    --description "INT8 (ONNX Runtime static quantization, QDQ, 7-bit weights) of the ReLU twin of sr_x$$s: fidelity super-resolution x$$s on luma for CPU deployments"; \
	done

train-deblock: install  ## deblock: 9000 iterations from scratch, then three continuations (twice the batch, lower rates, lighter encodes)
	$(PY) -m training.train_deblock --iters 9000 --patch 48 --eval-every 3000 --out training/runs/deblock_stage1
	$(PY) -m training.train_deblock --iters 12000 --batch 32 --patch 48 --lr 3e-4 --segments 12 --eval-every 2000 \
	  --init training/runs/deblock_stage1/model.pt --out training/runs/deblock_stage2
	$(PY) -m training.train_deblock --iters 10000 --batch 32 --patch 48 --lr 2e-4 --segments 16 --crf 24 46 --eval-every 2000 \
	  --init training/runs/deblock_stage2/model.pt --out training/runs/deblock_stage3
	$(PY) -m training.train_deblock --iters 8000 --batch 32 --patch 48 --lr 1.5e-4 --segments 16 --crf 16 46 --eval-every 2000 \
	  --init training/runs/deblock_stage3/model.pt --out training/runs/deblock
	$(PACKAGE) --onnx training/runs/deblock/model.onnx --name deblock --scale 1 --metrics-json training/runs/deblock/metrics.json \
	  --description "compression-artifact removal (blocking, ringing, mosquito noise) on luma, same size; trained on grayscale JPEG q5-40 and real H.264/HEVC re-encodes at CRF 30-46, later stages 24-46 and 16-46"
	$(MAKE) calibrate-deblock

requantize-int8: install  ## sr_x2_int8, sr_x4_int8 version 3 as shipped: the version-1 INT8 models (8-bit weights) dequantized and quantized again with 7-bit weights, their ReLUs (Clip) quantized too
	for s in 2 4; do \
	  git show 150271d:triton_models/sr_x$${s}_int8/1/model.onnx > training/runs/sr_x$${s}_int8_v1.onnx && \
	  $(PY) -m training.quantize --model sr_x$$s --from-int8 training/runs/sr_x$${s}_int8_v1.onnx \
	    --name sr_x$${s}_int8 --out training/runs/sr_x$${s}_int8_clip && \
	  $(PACKAGE) --onnx training/runs/sr_x$${s}_int8_clip/model.onnx --name sr_x$${s}_int8 --scale $$s --version 3 \
	    --metrics-json training/runs/sr_x$${s}_int8_clip/metrics.json --tensorrt none \
	    --description "INT8 (ONNX Runtime static quantization, QDQ, 7-bit weights) of the ReLU twin of sr_x$$s: fidelity super-resolution x$$s on luma for CPU deployments"; \
	done

train-deblock-heavy: install  ## deblock_heavy: the block-aligned U-Net, 6000 iterations on JPEG stills and H.264/HEVC re-encodes, then 2500 with more (and heavier) video (about 2 h on 2 cores)
	$(PY) -m training.train_deblock --arch unet --widths 16 32 64 128 --level-blocks 1 1 1 4 --align 16 --patch 96 \
	  --batch 16 --iters 6000 --lr 4e-4 --warmup 300 --segments 16 --crf 16 46 --eval-every 1000 --out training/runs/deblock_unet
	$(PY) -m training.train_deblock --arch unet --widths 16 32 64 128 --level-blocks 1 1 1 4 --align 16 --patch 96 \
	  --batch 16 --iters 2500 --lr 2e-4 --segments 16 --crf 26 46 --video-fraction 0.75 --eval-every 1250 --seed 1 \
	  --init training/runs/deblock_unet/model.pt --out training/runs/deblock_unet_ft
	$(PACKAGE) --onnx training/runs/deblock_unet_ft/model.onnx --name deblock_heavy --scale 1 --grid 8 --overlap 64 \
	  --metrics-json training/runs/deblock_unet_ft/metrics.json \
	  --description "compression-artifact removal for heavily compressed sources (JPEG q <= 20, H.264 CRF >= 40) on luma, same size, on the frame's 8x8 block grid; trained on grayscale JPEG q5-40 and real H.264/HEVC re-encodes at CRF 16-46, then 26-46"
	$(MAKE) calibrate-deblock DEBLOCK_MODEL=deblock_heavy

DEBLOCK_MODEL ?= deblock
calibrate-deblock: install  ## deblock:strength=auto: fit the quantiser -> strength ramps (H.264, MPEG-2, MPEG-4 Part 2) of $(DEBLOCK_MODEL) on the training clips (~10 min); copy the printed ramps into restora/stages/deblock.py QP_RAMPS
	$(PY) -m training.calibrate_deblock --model $(DEBLOCK_MODEL) --out training/runs/$(DEBLOCK_MODEL)_qp
	$(PY) -m training.calibrate_deblock --model $(DEBLOCK_MODEL) --codec mpeg2 --out training/runs/$(DEBLOCK_MODEL)_qp_mpeg2
	$(PY) -m training.calibrate_deblock --model $(DEBLOCK_MODEL) --codec mpeg4 --out training/runs/$(DEBLOCK_MODEL)_qp_mpeg4

train-denoise: install  ## denoise
	$(PY) -m training.train_denoise --iters 6000 --blocks 8 --eval-every 2000 --out training/runs/denoise
	$(PACKAGE) --onnx training/runs/denoise/model.onnx --name denoise --scale 1 --metrics-json training/runs/denoise/metrics.json \
	  --description "blind denoising (Gaussian and Poisson noise of unknown level) of luma, same size"

train-joint: install  ## restore_joint_x2 (PReLU stages, then continued with LeakyReLU: fused on the CPU)
	$(PY) -m training.train_joint --iters 5000 --eval-every 500 --out training/runs/restore_joint_x2_stage1
	$(PY) -m training.train_joint --iters 3000 --lr 3e-4 --video-fraction 0.5 --segments 12 --eval-every 500 \
	  --init training/runs/restore_joint_x2_stage1/model.pt --out training/runs/restore_joint_x2
	$(PY) -m training.train_joint --iters 4000 --lr 3e-4 --video-fraction 0.5 --segments 12 --eval-every 500 \
	  --act lrelu --init training/runs/restore_joint_x2/model.pt --out training/runs/restore_joint_x2_lrelu
	$(PACKAGE) --onnx training/runs/restore_joint_x2_lrelu/model.onnx --name restore_joint_x2 --scale 2 --version 2 \
	  --metrics-json training/runs/restore_joint_x2_lrelu/metrics.json \
	  --description "joint denoising + compression-artifact removal + super-resolution x2 of luma in one network"

train-vsr: install  ## vsr_x4 (version 2): from scratch, continued at a lower learning rate, then with LeakyReLU (fused on the CPU)
	$(PY) -m training.train_vsr --iters 10000 --lr 1e-3 --still-fraction 0.7 --out training/runs/vsr_x4_stage1
	$(PY) -m training.train_vsr --iters 15000 --lr 5e-4 --still-fraction 0.7 --threads 1 --eval-every 1500 \
	  --init training/runs/vsr_x4_stage1/model.pt --out training/runs/vsr_x4
	$(PY) -m training.train_vsr --act lrelu --iters 5000 --lr 2.5e-4 --still-fraction 0.7 --threads 1 --eval-every 1000 \
	  --init training/runs/vsr_x4/model.pt --out training/runs/vsr_x4_lrelu
	$(PY) -m training.train_vsr --act lrelu --iters 6000 --batch 32 --lr 2e-4 --still-fraction 0.7 --threads 1 --eval-every 1500 \
	  --init training/runs/vsr_x4_lrelu/model.pt --out training/runs/vsr_x4_lrelu2
	$(PACKAGE) --onnx training/runs/vsr_x4_lrelu2/model.onnx --name vsr_x4 --scale 4 --frames 5 --version 2 \
	  --metrics-json training/runs/vsr_x4_lrelu2/metrics.json \
	  --description "multi-frame video super-resolution x4 of luma (5 consecutive frames in, the middle one out)"

clean:  ## remove build outputs (keeps the virtualenvs)
	rm -rf out build .pytest_cache .mypy_cache .ruff_cache

include $(wildcard mk/*.mk)

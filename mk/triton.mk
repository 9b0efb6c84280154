# Local Triton Inference Server (CPU, python backend) for development and tests.
# Included from the main Makefile; expects VENV (the project venv) and the $(VENV)/.installed target.
# The server runs from its own virtualenv (.venv-triton, numpy<2), pinned by serving/triton-constraints.txt.

TRITON_HTTP_PORT ?= 8000
TRITON_GRPC_PORT ?= 8001
TRITON_METRICS_PORT ?= 8002
TRITON_ARGS ?= --http-port $(TRITON_HTTP_PORT) --grpc-port $(TRITON_GRPC_PORT) --metrics-port $(TRITON_METRICS_PORT)

.PHONY: triton-venv triton-up triton-down triton-status triton-serve

.venv-triton/.restora-triton-installed: serving/triton-constraints.txt | $(VENV)/.installed
	$(VENV)/bin/python -m serving.triton_server venv && touch $@

triton-venv: .venv-triton/.restora-triton-installed  ## create/update the Triton server's virtualenv

triton-up: triton-venv  ## start Triton in the background on 127.0.0.1 (waits until ready)
	$(VENV)/bin/python -m serving.triton_server up $(TRITON_ARGS)

triton-down: | $(VENV)/.installed  ## stop the background Triton (SIGTERM, then SIGKILL)
	$(VENV)/bin/python -m serving.triton_server down

triton-status: | $(VENV)/.installed  ## is it running, ready, which models
	$(VENV)/bin/python -m serving.triton_server status

triton-serve: triton-venv  ## run Triton in the foreground until Ctrl-C
	$(VENV)/bin/python -m serving.triton_server serve $(TRITON_ARGS)

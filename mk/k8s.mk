# Kubernetes manifests (k8s/): offline checks.
#
#   make k8s-check   render every overlay with `kubectl kustomize` and validate the output
#                    (plus the flow-run Job of each prefect.yaml deployment) strictly against
#                    the Kubernetes $(K8S_VERSION) schemas bundled with kubernetes-validate
#   make k8s-test    the pytest policy checks in tests/k8s (limits, non-root, probes, ...)
#
# No cluster is needed. Included by the main Makefile (include mk/*.mk), which defines
# VENV and $(VENV)/.installed; standalone: make -f mk/k8s.mk k8s-check VENV=.venv

VENV ?= .venv
KUBECTL ?= kubectl
K8S_OVERLAYS ?= $(sort $(notdir $(wildcard k8s/overlays/*)))
# newest Kubernetes schema bundled with the pinned kubernetes-validate
K8S_VERSION ?= 1.37
KUBERNETES_VALIDATE_VERSION ?= 1.37.0
K8S_BUILD ?= build/k8s

K8S_PYTHON := $(VENV)/bin/python
K8S_VALIDATE_STAMP := $(VENV)/.kubernetes-validate-$(KUBERNETES_VALIDATE_VERSION)
# Depend on the project venv only when the main Makefile (which knows how to build it)
# is in play; standalone use just needs an existing $(VENV).
K8S_VENV_DEP := $(if $(filter Makefile makefile GNUmakefile,$(notdir $(MAKEFILE_LIST))),$(VENV)/.installed)

.PHONY: k8s-check k8s-test

$(K8S_VALIDATE_STAMP): | $(K8S_VENV_DEP)
	@test -x $(K8S_PYTHON) || { echo "k8s: no virtualenv at $(VENV) (create it first)" >&2; exit 1; }
	$(K8S_PYTHON) -m pip install --quiet "kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION)"
	@touch $@

k8s-check: $(K8S_VALIDATE_STAMP)
	@command -v $(KUBECTL) >/dev/null 2>&1 || { echo "k8s-check: '$(KUBECTL)' not found; install kubectl (>= 1.27, it bundles kustomize)" >&2; exit 1; }
	@test -n "$(K8S_OVERLAYS)" || { echo "k8s-check: no overlays under k8s/overlays" >&2; exit 1; }
	@mkdir -p $(K8S_BUILD)
	@set -e; for overlay in $(K8S_OVERLAYS); do \
	  echo "k8s-check: kubectl kustomize k8s/overlays/$$overlay"; \
	  $(KUBECTL) kustomize k8s/overlays/$$overlay > $(K8S_BUILD)/$$overlay.yaml; \
	  $(VENV)/bin/kubernetes-validate --strict --quiet -k $(K8S_VERSION) $(K8S_BUILD)/$$overlay.yaml; \
	done
	@echo "k8s-check: rendering the flow-run Jobs of prefect.yaml"
	@$(K8S_PYTHON) tests/k8s/flow_run_job.py > $(K8S_BUILD)/flow-run-jobs.yaml
	@$(VENV)/bin/kubernetes-validate --strict --quiet -k $(K8S_VERSION) $(K8S_BUILD)/flow-run-jobs.yaml
	@echo "k8s-check: ok ($(K8S_OVERLAYS) + flow-run Jobs valid against Kubernetes $(K8S_VERSION), strict)"

k8s-test:
	$(K8S_PYTHON) -m pytest tests/k8s -q

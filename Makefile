# Developer entry points. `make test` and `make demo` work on a fresh machine: they build
# .venv first. PYTHON picks the interpreter that creates it (3.11 or newer).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# `make test` runs its tests in this many processes (pytest-xdist, one file per process at a
# time: a module's sandbox or installed chart is started once); 0 runs them in one process.
PYTEST_WORKERS ?= 2
LINT_PATHS := operator tests $(wildcard benchmarks)

.PHONY: help venv test test-frameworks test-scenarios lint format crds clean demo

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml operator/kubesandbox/pyproject.toml scripts/install-k8s-tools.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: an open range would let pip resolve a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	# the sandbox is a distribution of its own: editable here, it satisfies the `sandbox` extra
	$(BIN)/pip install -q -e operator/kubesandbox -e '.[runtime,llm,sandbox,dev]'
	PYTHON=$(BIN)/python scripts/install-k8s-tools.sh $(BIN)
	touch $@

venv: $(STAMP)  ## create .venv with the project, its extras, kubectl and helm

lint: $(STAMP)  ## ruff, mypy, import contracts (layers), no test-only product code, the sandbox's names
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	$(BIN)/python scripts/unused_names.py
	@# kinds, plurals and pod phases are names from api/ (JOB_KIND, PodPhase...), never literals
	@! grep -rnE '"(BigModelJob|BigModelService|bigmodeljobs|bigmodelservices|Pending|Running|Succeeded|Failed|Unknown)"' \
	  operator/bigmodel/controller operator/bigmodel/telemetry operator/bigmodel/manifests --include='*.py' \
	  || { echo "a kind, plural or pod phase spelled as a string (above): use bigmodel.api's names"; exit 1; }
	@# the operator's settings are read once (OperatorSettings.read in main.py and leader.py);
	@# elsewhere only the standard KUBECONFIG and POD_NAME are read from the environment
	@! grep -rnE 'os\.environ|getenv' operator/bigmodel/controller operator/bigmodel/telemetry \
	  operator/bigmodel/manifests operator/bigmodel/api --include='*.py' \
	  | grep -vE 'OperatorSettings\.read\(os\.environ|"(KUBECONFIG|POD_NAME)"|def new_identity\(' \
	  || { echo "the environment read outside OperatorSettings (above): add a setting"; exit 1; }
	@# the sandbox is a product of its own: only its deprecated names (legacy.py) spell ours
	@! grep -rIli bigmodel operator/kubesandbox --include='*.py' --include='*.c' --include='*.toml' \
	  --exclude=legacy.py --exclude=test_legacy.py || { echo "the sandbox mentions bigmodel (above)"; exit 1; }

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

test: lint  ## lint, then every test but the slow ones below, in PYTEST_WORKERS processes (e2e tests skip without a cluster)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-frameworks: $(STAMP)  ## the slow framework tests (real TensorFlow, Dask, Spark), installing their extras
	# the extras only add packages: torch stays at its pin (checked with tensorflow 2.21,
	# dask 2026.8, pyspark 4.3); Spark also needs Java 17 (.ci/run installs it)
	$(BIN)/pip install -q -e '.[tensorflow,dask,spark]'
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest -m frameworks $(PYTEST_ARGS)

test-scenarios: $(STAMP)  ## the long torchrun scenarios (straggler causes, replacement, start latency) in one process
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest -m scenarios $(PYTEST_ARGS)

crds: $(STAMP)  ## regenerate crds/, the chart's crds/ and docs/api-reference.md from the models
	$(BIN)/bigmodel crds --out crds --reference docs/api-reference.md
	$(BIN)/bigmodel crds --out charts/bigmodel-operator/crds

demo: $(STAMP)  ## train the CPU example on a local sandbox with the operator, end to end
	$(BIN)/python -m bigmodel.demo

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# ---- Chart, images and a real cluster (kind). Need Docker and kind on PATH; `make test`
# does not use them (tests/e2e skip without BIGMODEL_E2E=1).
.PHONY: kind-up e2e
KIND            ?= kind
KIND_CLUSTER    ?= bigmodel
KIND_CONTEXT    := kind-$(KIND_CLUSTER)
VERSION         := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGES          := operator trainer server
OPERATOR_NS     ?= bigmodel-system
WITH_MONITORING ?= 0
MONITORING_NS   ?= monitoring
# kube-prometheus-stack chart version for WITH_MONITORING=1 (empty: the latest; pin it for
# reproducible clusters, e.g. KPS_VERSION=75.15.1).
KPS_VERSION     ?=

kind-up: $(STAMP)  ## kind cluster, images, chart (WITH_MONITORING=1 adds Prometheus+Grafana)
	$(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' \
	  || $(KIND) create cluster --name $(KIND_CLUSTER) --config kind-config.yaml
	for image in $(IMAGES); do \
	  if [ $$image = operator ]; then file=operator; else file=runtime; fi; \
	  docker build -f images/$$file/Dockerfile --target $$image --build-arg VERSION=$(VERSION) \
	    -t bigmodel-$$image:$(VERSION) . \
	  && $(KIND) load docker-image --name $(KIND_CLUSTER) bigmodel-$$image:$(VERSION) || exit 1; \
	done
ifeq ($(WITH_MONITORING),1)
	$(BIN)/helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update
	$(BIN)/helm upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack \
	  --kube-context $(KIND_CONTEXT) --namespace $(MONITORING_NS) --create-namespace \
	  $(if $(KPS_VERSION),--version $(KPS_VERSION)) --wait --timeout 10m \
	  --set prometheus.service.type=NodePort --set prometheus.service.nodePort=30090 \
	  --set grafana.service.type=NodePort --set grafana.service.nodePort=30030 \
	  --set grafana.sidecar.dashboards.searchNamespace=ALL
endif
	# Helm never upgrades crds/: apply them first, every time.
	$(BIN)/kubectl --context $(KIND_CONTEXT) apply --server-side --force-conflicts \
	  -f charts/bigmodel-operator/crds/
	$(BIN)/helm upgrade --install bigmodel-operator charts/bigmodel-operator \
	  --kube-context $(KIND_CONTEXT) --namespace $(OPERATOR_NS) --create-namespace --wait \
	  $(if $(filter 1,$(WITH_MONITORING)),--set monitoring.labels.release=kube-prometheus-stack \
	    --set monitoring.serviceMonitor.enabled=true --set monitoring.podMonitor.enabled=true \
	    --set monitoring.prometheusRule.enabled=true --set monitoring.grafanaDashboard.enabled=true)
	@echo "kubectl context: $(KIND_CONTEXT); run the end-to-end tests with: make e2e"

e2e: $(STAMP)  ## end-to-end tests against KUBECONFIG's current context (e.g. after kind-up)
	BIGMODEL_E2E=1 BIGMODEL_E2E_OPERATOR_NAMESPACE=$(OPERATOR_NS) PATH=$(CURDIR)/$(BIN):$$PATH \
	  $(BIN)/pytest tests/e2e -m e2e -p no:cacheprovider $(PYTEST_ARGS)

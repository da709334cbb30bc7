# The front door: `make` alone lists the targets with their `## ` help.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Tool venvs of their own (checkov pins old packages; KServe's client its own), made before the tests.
KSERVE_VENV := .venv-kserve
KSERVE_STAMP := $(KSERVE_VENV)/.installed-stamp
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed-stamp

# Embedded default: a SQLite store and an artifact folder in the working directory.
MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
export MLFLOW_TRACKING_URI
MODEL_NAME ?= product-classifier
PORT ?= 8000
TRAIN_ARGS ?=
TUNE_ARGS ?= --trials 20
PYTEST_ARGS ?=
# make test runs test files on this many processes (pytest-xdist; a file's tests stay on one).
TEST_WORKERS ?= 2

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found; install Python 3.11 first" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[train,serve,spark,dev,bench]'
	@touch $@

.PHONY: install
install: $(STAMP) ## Create .venv and install the project with all extras (pinned by constraints.txt)

.PHONY: run
run: train serve ## Train on the bundled sample, register and promote, then serve the champion

.PHONY: train
train: $(STAMP) ## Train on the bundled sample into the embedded MLflow store (TRAIN_ARGS=... for more)
	$(VENV)/bin/product-train --model-name $(MODEL_NAME) $(TRAIN_ARGS)

.PHONY: tune
tune: $(STAMP) ## Tune on the bundled sample (study in optuna.db, best config in best.yaml; TUNE_ARGS=...)
	$(VENV)/bin/product-tune $(TUNE_ARGS)

.PHONY: train-best
train-best: $(STAMP) ## Train from the config `make tune` wrote (best.yaml)
	$(VENV)/bin/product-train --config best.yaml --model-name $(MODEL_NAME) $(TRAIN_ARGS)

.PHONY: serve
serve: $(STAMP) ## Serve models:/$(MODEL_NAME)@champion from the embedded store on $(PORT)
	MODEL_NAME=$(MODEL_NAME) PORT=$(PORT) $(VENV)/bin/product-serve

# ---- batch scoring (README "Batch scoring") ----
BATCH_MODEL ?= models:/$(MODEL_NAME)@champion
BATCH_DATA ?= training/data/sample_catalog.jsonl.gz
BATCH_OUTPUT ?= build/batch/labels.parquet
BATCH_ARGS ?=

.PHONY: classify classify-spark bench-batch
classify: $(STAMP) ## Label every product of BATCH_DATA with BATCH_MODEL into BATCH_OUTPUT (local engine)
	$(VENV)/bin/product-classify --model $(BATCH_MODEL) --data $(BATCH_DATA) --output $(BATCH_OUTPUT) --overwrite $(BATCH_ARGS)

classify-spark: $(STAMP) ## The same with PySpark on this machine (local[*]; needs java); BATCH_OUTPUT is a Parquet folder
	$(VENV)/bin/product-classify --engine spark --model $(BATCH_MODEL) --data $(BATCH_DATA) --output $(BATCH_OUTPUT) --overwrite $(BATCH_ARGS)

bench-batch: $(STAMP) ## Batch-scoring benchmark: both engines, 1x/4x/16x the shared catalog (bench/results/batch.json)
	$(PY) -m bench.bench_batch $(BENCH_BATCH_ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: format
format: $(STAMP) ## Rewrite the code with ruff's formatter and fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: test-tools smoke-tools
test-tools: ## Install the system tools make test uses: prometheus (promtool), a Java runtime, PostgreSQL (apt-get, as root)
	@scripts/install-test-tools.sh test

smoke-tools: ## Install podman and what rootless podman needs for make smoke (apt-get, as root)
	@scripts/install-test-tools.sh smoke

.PHONY: test
test: lint test-tools $(TOOLS_STAMP) $(KSERVE_STAMP) ## Lint, install the test tools, then the whole test suite (unit, integration, platform) on TEST_WORKERS processes
	$(VENV)/bin/pytest -m "not container" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

.PHONY: test-faults
test-faults: $(STAMP) ## Only the fault-injection suite (real MLflow and serving processes)
	$(VENV)/bin/pytest -m faults $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: $(STAMP) ## Only the fast unit tests (no servers, no external tools)
	$(VENV)/bin/pytest -m "not integration and not platform and not container" $(PYTEST_ARGS)

$(KSERVE_STAMP): tests/clients/kserve-requirements.txt
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found" >&2; exit 1; }
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/pip install --quiet -r tests/clients/kserve-requirements.txt
	@touch $@

.PHONY: kserve-client
kserve-client: $(KSERVE_STAMP) ## Install KServe's Python client into .venv-kserve (the v2 protocol tests use it)

.PHONY: constraints
constraints: $(STAMP) ## Re-pin constraints.txt from the current virtual environment
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

.PHONY: clean-local
clean-local: ## Remove the embedded MLflow store, the tuning study, best.yaml and caches (keeps .venv)
	rm -rf mlflow.db mlruns mlartifacts optuna.db best.yaml .pytest_cache .mypy_cache .ruff_cache

# ---- images and Kubernetes ----
# Build the images, push them (or load them into kind/minikube), deploy with kustomize, wait.
# docs/platform.md walks through it. Images are tagged with the git revision (plus -dirty when the
# tree has uncommitted changes), so a running pod always names the code it runs.
PROJECT_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
ifeq ($(origin TAG), undefined)
TAG := $(or $(shell git rev-parse --short HEAD 2>/dev/null),$(PROJECT_VERSION))$(shell test -z "$$(git status --porcelain 2>/dev/null)" || echo -dirty)
endif
REGISTRY ?= localhost
OVERLAY ?= dev
KUBE_CONTEXT ?=
LOAD ?=
KIND_CLUSTER ?= kind
CONTAINER_TOOL ?= $(shell command -v docker >/dev/null 2>&1 && echo docker || echo podman)
PYTHON_IMAGE ?= python:3.11-slim-bookworm
CA_BUNDLE ?=
BUILD_OPTS ?=
TRAINING_TIMEOUT ?= 3600
TUNING_TIMEOUT ?= 90000

NAMESPACE := product-classifier
IMAGE_TRAIN := $(REGISTRY)/product-classifier-train
IMAGE_SERVE := $(REGISTRY)/product-classifier-serve
IMAGE_MLFLOW := $(REGISTRY)/product-classifier-mlflow
IMAGE_BATCH_SPARK := $(REGISTRY)/product-classifier-batch-spark
KUBECTL := kubectl$(if $(KUBE_CONTEXT), --context $(KUBE_CONTEXT))
K8S_RENDERED := build/k8s/$(OVERLAY).yaml
RULES := k8s/components/prometheus-operator/rules/product-classifier.rules.yaml
RULE_TESTS := k8s/components/prometheus-operator/rules/product-classifier.tests.yaml
PROMETHEUS_RULE := k8s/components/prometheus-operator/prometheus-rule.yaml
SCRAPE_CONFIG := k8s/plain-prometheus/prometheus.yml
comma := ,

# What each deploy step applies, chosen by the app.kubernetes.io/component label.
SELECT_PLATFORM := app.kubernetes.io/component notin (training,retraining,serving,monitoring,batch,batch-spark,tuning)
SELECT_TRAINING := app.kubernetes.io/component=training
SELECT_RETRAINING := app.kubernetes.io/component=retraining
SELECT_TUNING := app.kubernetes.io/component=tuning
SELECT_SERVING := app.kubernetes.io/component in (serving,monitoring)
SELECT_BATCH := app.kubernetes.io/component=batch
SELECT_BATCH_SPARK := app.kubernetes.io/component=batch-spark

BUILD_FLAGS = --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) \
	--build-arg VERSION=$(PROJECT_VERSION) \
	--build-arg REVISION=$(shell git rev-parse HEAD 2>/dev/null || echo unknown) \
	--build-arg CREATED=$(shell git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ) \
	--build-arg SOURCE=$(shell git config --get remote.origin.url 2>/dev/null) \
	$(if $(CA_BUNDLE),--secret id=ca$(comma)src=$(CA_BUNDLE)) \
	$(if $(findstring podman,$(CONTAINER_TOOL)),--format docker) $(BUILD_OPTS)

# $(call build_image,train): Dockerfile.train -> $(REGISTRY)/product-classifier-train:$(TAG)
define build_image
$(CONTAINER_TOOL) build $(BUILD_FLAGS) --file Dockerfile.$(1) --tag $(REGISTRY)/product-classifier-$(1):$(TAG) .
endef

# $(call load_image,train): into the kind or minikube node, through an image archive
define load_image
@mkdir -p build/images
$(CONTAINER_TOOL) save --output build/images/$(1).tar $(REGISTRY)/product-classifier-$(1):$(TAG)
$(if $(filter kind,$(LOAD)),kind load image-archive build/images/$(1).tar --name $(KIND_CLUSTER),minikube image load build/images/$(1).tar)
@rm -f build/images/$(1).tar
endef

# Preconditions, one line each on failure (what is wrong, how to fix it). The all-* targets check
# them all first (`preflight`), before the builds and pushes that take minutes.
KUBECTL_MIN_MINOR := 31
.PHONY: check-container-tool check-registry check-load check-kubectl check-overlay check-cluster preflight
check-container-tool:
	@command -v $(firstword $(CONTAINER_TOOL)) >/dev/null 2>&1 || { echo "error: $(CONTAINER_TOOL) not found; install docker or podman, or set CONTAINER_TOOL" >&2; exit 1; }
	@test "$(firstword $(CONTAINER_TOOL))" != docker || docker info >/dev/null 2>&1 || { echo "error: the docker daemon is not reachable; start it, or use CONTAINER_TOOL=podman" >&2; exit 1; }

check-registry:
	@test "$(REGISTRY)" != localhost || { echo "error: REGISTRY is localhost: set REGISTRY=your.registry/path to push, or LOAD=kind|minikube to load images into a local cluster" >&2; exit 1; }

# kind loads into the cluster named KIND_CLUSTER, minikube into its running profile.
check-load:
	@case "$(LOAD)" in kind|minikube) ;; *) echo "error: LOAD must be kind or minikube (got '$(LOAD)')" >&2; exit 1;; esac
	@command -v $(LOAD) >/dev/null 2>&1 || { echo "error: LOAD=$(LOAD) but $(LOAD) is not installed; install it, or unset LOAD and set REGISTRY to push instead" >&2; exit 1; }
ifeq ($(LOAD),kind)
	@kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || { echo "error: kind has no cluster named $(KIND_CLUSTER); create it (kind create cluster --name $(KIND_CLUSTER)) or set KIND_CLUSTER" >&2; exit 1; }
else ifeq ($(LOAD),minikube)
	@minikube status >/dev/null 2>&1 || { echo "error: minikube is not running; start it with minikube start" >&2; exit 1; }
endif

# Older kubectl (kustomize before 5.4) cannot render k8s/: patch files hold several objects.
check-kubectl:
	@command -v kubectl >/dev/null 2>&1 || { echo "error: kubectl not found; install kubectl 1.$(KUBECTL_MIN_MINOR) or newer (https://kubernetes.io/docs/tasks/tools/)" >&2; exit 1; }
	@minor=$$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n 1); test "$${minor:-0}" -ge $(KUBECTL_MIN_MINOR) || { echo "error: kubectl 1.$${minor:-?} is too old to render k8s/ (its kustomize); install kubectl 1.$(KUBECTL_MIN_MINOR) or newer" >&2; exit 1; }

check-overlay:
	@test -f k8s/overlays/$(OVERLAY)/kustomization.yaml || { echo "error: OVERLAY=$(OVERLAY): no such overlay; use one of: $(notdir $(wildcard k8s/overlays/*))" >&2; exit 1; }

check-cluster: check-kubectl
	@$(KUBECTL) cluster-info --request-timeout=5s >/dev/null 2>&1 || { echo "error: no Kubernetes cluster reachable through kubectl ($(if $(KUBE_CONTEXT),context $(KUBE_CONTEXT),current context: $$(kubectl config current-context 2>/dev/null || echo none))); start one or set KUBE_CONTEXT" >&2; exit 1; }

preflight: check-container-tool $(if $(LOAD),check-load,check-registry) check-overlay check-cluster render ## Check what all-* needs (container tool, REGISTRY or LOAD, kubectl, the overlay, the cluster) without building

.PHONY: images image-train image-serve image-mlflow
images: image-train image-serve image-mlflow ## Build the training, serving and MLflow images, tagged REGISTRY/product-classifier-*:TAG

image-train: check-container-tool ## Build the training image (Dockerfile.train)
	$(call build_image,train)

image-serve: check-container-tool ## Build the serving image (Dockerfile.serve)
	$(call build_image,serve)

image-mlflow: check-container-tool ## Build the MLflow tracking-server image (Dockerfile.mlflow)
	$(call build_image,mlflow)

# On the training image of the same REGISTRY and TAG (build it first: make image-train).
.PHONY: image-batch-spark push-batch-spark load-batch-spark publish-batch-spark
image-batch-spark: check-container-tool ## Build the Spark batch-scoring image on the training image (Dockerfile.batch-spark)
	@$(CONTAINER_TOOL) image inspect $(IMAGE_TRAIN):$(TAG) >/dev/null 2>&1 || { echo "error: $(IMAGE_TRAIN):$(TAG) not found; build it first with make image-train (same REGISTRY and TAG)" >&2; exit 1; }
	$(call build_image,batch-spark) --build-arg TRAIN_IMAGE=$(IMAGE_TRAIN):$(TAG)

push-batch-spark: check-container-tool check-registry ## Push the Spark batch-scoring image to REGISTRY
	$(CONTAINER_TOOL) push $(IMAGE_BATCH_SPARK):$(TAG)

load-batch-spark: check-container-tool check-load ## Load the Spark batch-scoring image into kind or minikube (LOAD=...)
	$(call load_image,batch-spark)

publish-batch-spark: $(if $(LOAD),load,push)-batch-spark ## Push the Spark batch-scoring image to REGISTRY, or load it with LOAD=kind|minikube

.PHONY: push push-train push-serve push-mlflow load-train load-serve load-mlflow
push: push-train push-serve push-mlflow ## Push the three images to REGISTRY

push-train: check-container-tool check-registry ## Push the training image to REGISTRY
	$(CONTAINER_TOOL) push $(IMAGE_TRAIN):$(TAG)

push-serve: check-container-tool check-registry ## Push the serving image to REGISTRY
	$(CONTAINER_TOOL) push $(IMAGE_SERVE):$(TAG)

push-mlflow: check-container-tool check-registry ## Push the MLflow image to REGISTRY
	$(CONTAINER_TOOL) push $(IMAGE_MLFLOW):$(TAG)

load-train: check-container-tool check-load ## Load the training image into kind or minikube (LOAD=...)
	$(call load_image,train)

load-serve: check-container-tool check-load ## Load the serving image into kind or minikube (LOAD=...)
	$(call load_image,serve)

load-mlflow: check-container-tool check-load ## Load the MLflow image into kind or minikube (LOAD=...)
	$(call load_image,mlflow)

.PHONY: render deploy-tracking deploy-training wait-training deploy-serving wait-serving deploy-retraining clean
render: check-kubectl check-overlay ## Render k8s/overlays/OVERLAY with this build's image tags into build/k8s/
	@mkdir -p $(dir $(K8S_RENDERED))
	set -o pipefail; kubectl kustomize k8s/overlays/$(OVERLAY) \
		| sed -E 's#^( +image: ).*(product-classifier-(train|serve|mlflow|batch-spark)):.*$$#\1$(REGISTRY)/\2:$(TAG)#' \
		> $(K8S_RENDERED)

deploy-tracking: check-cluster render ## Apply the namespace, PostgreSQL and MLflow; wait until they are up
	$(KUBECTL) apply --filename $(K8S_RENDERED) --selector '$(SELECT_PLATFORM)'
	$(KUBECTL) --namespace $(NAMESPACE) rollout status statefulset/mlflow-postgresql --timeout=10m
	$(KUBECTL) --namespace $(NAMESPACE) rollout status deployment/mlflow --timeout=10m

deploy-training: deploy-tracking ## Start the training Job (replacing a previous one)
	$(KUBECTL) --namespace $(NAMESPACE) delete job product-classifier-train --ignore-not-found --wait
	$(KUBECTL) apply --filename $(K8S_RENDERED) --selector '$(SELECT_TRAINING)'

wait-training: check-cluster ## Wait for the training Job and print its summary
	KUBECTL="$(KUBECTL)" scripts/containers/wait-for-job.sh $(NAMESPACE) product-classifier-train $(TRAINING_TIMEOUT)

.PHONY: deploy-tuning wait-tuning all-tuning
deploy-tuning: deploy-tracking ## Start the tuning Jobs: W workers, then training from the best config (replacing previous ones)
	$(KUBECTL) --namespace $(NAMESPACE) delete job product-classifier-tune product-classifier-train-best --ignore-not-found --wait
	$(KUBECTL) apply --filename $(K8S_RENDERED) --selector '$(SELECT_TUNING)'

wait-tuning: check-cluster ## Wait for the search and the training from its best config; print the training summary
	KUBECTL="$(KUBECTL)" scripts/containers/wait-for-job.sh $(NAMESPACE) product-classifier-train-best $(TUNING_TIMEOUT)
	$(KUBECTL) --namespace $(NAMESPACE) logs job/product-classifier-train-best --container best-config | sed -n '/^tuning summary/,$$p'

all-tuning: preflight image-train image-mlflow publish-train publish-mlflow deploy-tuning wait-tuning ## Check (preflight), build, push (or LOAD=kind|minikube), deploy MLflow, tune and train the best; print the summaries

deploy-serving: check-cluster render ## Apply the serving Deployment, Service, HPA, PDB (and monitoring, if the overlay has it)
	$(KUBECTL) apply --filename $(K8S_RENDERED) --selector '$(SELECT_SERVING)'

wait-serving: check-cluster ## Wait for the serving rollout to finish
	$(KUBECTL) --namespace $(NAMESPACE) rollout status deployment/product-classifier --timeout=10m

deploy-retraining: check-cluster render ## Apply the retraining CronJob (overlays that include components/retraining)
	$(KUBECTL) apply --filename $(K8S_RENDERED) --selector '$(SELECT_RETRAINING)'

clean: check-cluster render ## Delete everything the overlay deployed, the namespace and its volumes included
	$(KUBECTL) delete --filename $(K8S_RENDERED) --ignore-not-found --wait=false

.PHONY: deploy-batch wait-batch deploy-batch-spark
deploy-batch: check-cluster render ## Start the batch-scoring Job (local engine, training image; replaces a previous one)
	$(KUBECTL) --namespace $(NAMESPACE) delete job product-classifier-batch --ignore-not-found --wait
	$(KUBECTL) apply --filename $(K8S_RENDERED) --selector '$(SELECT_BATCH)'

wait-batch: check-cluster ## Wait for the batch-scoring Job and print its summary
	KUBECTL="$(KUBECTL)" scripts/containers/wait-for-job.sh $(NAMESPACE) product-classifier-batch $(TRAINING_TIMEOUT)

deploy-batch-spark: check-cluster render ## Submit the batch-scoring SparkApplication (needs the Kubeflow Spark operator)
	@$(KUBECTL) get crd sparkapplications.sparkoperator.k8s.io >/dev/null 2>&1 || { echo "error: the SparkApplication CRD is missing; install the Kubeflow Spark operator first" >&2; exit 1; }
	$(KUBECTL) --namespace $(NAMESPACE) delete sparkapplication product-classifier-batch-spark --ignore-not-found --wait
	$(KUBECTL) apply --filename $(K8S_RENDERED) --selector '$(SELECT_BATCH_SPARK)'

.PHONY: all-training all-serving publish-train publish-serve publish-mlflow
# Push to REGISTRY, or load into the local cluster when LOAD is set.
publish-train: $(if $(LOAD),load,push)-train ## Push the training image to REGISTRY, or load it with LOAD=kind|minikube
publish-serve: $(if $(LOAD),load,push)-serve ## Push the serving image to REGISTRY, or load it with LOAD=kind|minikube
publish-mlflow: $(if $(LOAD),load,push)-mlflow ## Push the MLflow image to REGISTRY, or load it with LOAD=kind|minikube

all-training: preflight image-train image-mlflow publish-train publish-mlflow deploy-training wait-training ## Check (preflight), build, push (or LOAD=kind|minikube), deploy MLflow and train; print the summary

all-serving: preflight image-serve publish-serve deploy-serving wait-serving ## Check (preflight), build, push (or LOAD=kind|minikube), deploy serving and wait for the rollout

.PHONY: tools k8s-validate k8s-rules smoke
$(TOOLS_STAMP): scripts/containers/tools-requirements.txt
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found" >&2; exit 1; }
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet -r scripts/containers/tools-requirements.txt
	@touch $@

tools: $(TOOLS_STAMP) ## Install checkov, kubernetes-validate and hadolint into .venv-tools

k8s-validate: $(TOOLS_STAMP) $(STAMP) check-kubectl ## Render every overlay; kubernetes-validate, checkov, hadolint, promtool (rules, scrape config)
	@command -v promtool >/dev/null 2>&1 || { echo "error: promtool not found (apt-get install prometheus)" >&2; exit 1; }
	@mkdir -p build/k8s/validate
	@set -e -o pipefail; for overlay in $(notdir $(wildcard k8s/overlays/*)); do \
		echo "== k8s/overlays/$$overlay"; \
		kubectl kustomize k8s/overlays/$$overlay > build/k8s/validate/$$overlay.yaml; \
		$(TOOLS_VENV)/bin/kubernetes-validate --strict --quiet build/k8s/validate/$$overlay.yaml; \
		$(TOOLS_VENV)/bin/checkov --quiet --compact --skip-download --framework kubernetes \
			--file build/k8s/validate/$$overlay.yaml; \
	done
	$(TOOLS_VENV)/bin/hadolint Dockerfile.train Dockerfile.serve Dockerfile.mlflow Dockerfile.batch-spark
	promtool check rules $(RULES)
	@# Debian's promtool is built without Kubernetes discovery: it cannot parse the scrape job.
	@out=$$(cd $(dir $(SCRAPE_CONFIG)) && promtool check config $(notdir $(SCRAPE_CONFIG)) 2>&1) && echo "$$out" || { \
		case "$$out" in *"field kubernetes_sd_configs not found"*) \
			echo "note: this promtool has no Kubernetes discovery; tests/platform/test_plain_prometheus.py checks $(SCRAPE_CONFIG) with static targets";; \
		*) echo "$$out" >&2; exit 1;; esac; }
	cd $(dir $(RULE_TESTS)) && promtool test rules $(notdir $(RULE_TESTS))
	$(PY) scripts/containers/prometheus_rule.py --check $(RULES) $(PROMETHEUS_RULE)

k8s-rules: $(STAMP) ## Regenerate the PrometheusRule from the alert rule file
	$(PY) scripts/containers/prometheus_rule.py $(RULES) > $(PROMETHEUS_RULE)

smoke: $(STAMP) smoke-tools ## Container smoke test: build both images with podman, train against MLflow, serve, predict
	$(VENV)/bin/pytest -m "container and not spark_image" tests/platform $(PYTEST_ARGS)

.PHONY: smoke-batch-spark
smoke-batch-spark: $(STAMP) smoke-tools ## Spark image smoke test: build it on the training image, run --engine spark in it (not in make smoke)
	$(VENV)/bin/pytest -m spark_image tests/platform $(PYTEST_ARGS)

print-images: ## Print the image names this Makefile builds (REGISTRY, TAG)
	@echo $(IMAGE_TRAIN):$(TAG) $(IMAGE_SERVE):$(TAG) $(IMAGE_MLFLOW):$(TAG) $(IMAGE_BATCH_SPARK):$(TAG)

.PHONY: bench-bentoml-venv
bench-bentoml-venv: ## A separate venv with BentoML and the model's dependencies, for bench_serving's third server
	$(PYTHON) -m venv .venv-bentoml
	.venv-bentoml/bin/pip install --quiet 'bentoml>=1.4,<1.5'
	.venv-bentoml/bin/pip install --quiet mlflow-skinny scikit-learn imbalanced-learn nltk regex numba pandas scipy

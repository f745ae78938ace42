# kiam in Swift. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := build

SWIFT        ?= swift
BUILD_FLAGS  ?=
CERTS_DIR    ?= dev-certs
PLUGINS_PKG  := Tools/protoc-plugins
GENERATED    := Sources/Shared/Generated
# The tests' Python (moto, boto3, awscli, grpcio) lives in a virtual environment that
# scripts/install-test-deps.sh makes; every target finds it first on PATH.
export PATH := $(CURDIR)/.build/venv/bin:$(PATH)

.PHONY: help build release link-order lint format test e2e demo bench protos check-protos certs secrets manifests image-check clean deps build-deps

help:
	@echo "build         debug build of ./.build/debug/kiam"
	@echo "release       static release build (--static-swift-stdlib, hot code first: scripts/build-release.sh)"
	@echo "link-order    profile the agent and server (callgrind) and rewrite scripts/link-order/kiam.order (root)"
	@echo "demo          run kiam end to end here: STS, server, agent, pods asking 169.254.169.254"
	@echo "test          lint, then every test: unit, integration (moto, TLS, processes), e2e when root"
	@echo "lint          check the style (.swift-format: the project's style, 120 columns) with the toolchain's swift-format"
	@echo "format        rewrite the sources in that style"
	@echo "e2e           the end-to-end suite alone (root: network namespaces and iptables)"
	@echo "bench         benchmarks of the release build into bench-results/ (root; see BENCHMARKS.md)"
	@echo "protos        regenerate Sources/Shared/Generated from Protos/kiam.proto"
	@echo "check-protos  fail when the committed generated code is stale"
	@echo "certs         development CA, server and agent certificates in $(CERTS_DIR)/"
	@echo "secrets       Kubernetes Secrets kiam-server-tls and kiam-agent-tls in $(CERTS_DIR)/kiam-secrets.yaml"
	@echo "manifests     render manifests/ (kustomize base) with kubectl when it is installed"
	@echo "image-check   run the static release binary in a root filesystem without any Swift runtime"
	@echo "clean         remove build output and dev certificates"

build: build-deps
	$(SWIFT) build $(BUILD_FLAGS)

# Every function in a section of its own, laid out by scripts/link-order/kiam.order (see the script).
release: build-deps
	SWIFT=$(SWIFT) scripts/build-release.sh $(BUILD_FLAGS)

link-order:
	scripts/link-order/profile.sh

# Installs the test prerequisites (apt/pip) when missing, then runs every test.
# Our sources, not the generated protobuf code.
FORMAT_FILES = $(shell find Sources Tests Tools scripts -name '*.swift' -not -path '$(GENERATED)/*' -not -path '*/.build/*') Package.swift

lint:
	@echo "swift format lint --strict (.swift-format) on $(words $(FORMAT_FILES)) files"
	@$(SWIFT) format lint --strict --parallel $(FORMAT_FILES)

format:
	@$(SWIFT) format format --in-place --parallel $(FORMAT_FILES)

test: deps lint
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	KIAM_BINARY=$(CURDIR)/.build/debug/kiam $(SWIFT) test --skip-build --no-parallel $(BUILD_FLAGS)

e2e: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	KIAM_BINARY=$(CURDIR)/.build/debug/kiam $(SWIFT) test --skip-build --no-parallel --filter KiamE2ETests $(BUILD_FLAGS)

demo:
	@scripts/demo.sh

# The binary the Dockerfile ships, run in a root filesystem holding only it and the system
# libraries it links (no Docker engine needed).
image-check: release
	scripts/image-check.sh $$(SWIFT=$(SWIFT) scripts/build-release.sh --show-bin-path)/kiam

# Benchmarks of the static release build (root: network namespaces, iptables; wrk, nginx, moto).
# The harness builds in its own scratch path: it cannot link with --static-swift-stdlib, and
# sharing .build/release would rebuild everything each time the flag flips.
# BENCH_ARGS="--quick warm" tries the harness; results go to bench-results/ (see BENCHMARKS.md).
bench: deps release
	$(SWIFT) build -c release --product kiam-bench --scratch-path .build/bench $(BUILD_FLAGS)
	KIAM_BINARY=$$(SWIFT=$(SWIFT) scripts/build-release.sh --show-bin-path)/kiam \
	  $$($(SWIFT) build -c release --scratch-path .build/bench --show-bin-path)/kiam-bench $(BENCH_ARGS)

deps:
	@scripts/install-test-deps.sh

# The Swift toolchain and libre2-dev (installed when root).
build-deps:
	@SWIFT=$(SWIFT) scripts/install-build-deps.sh

# --- protocol buffers ------------------------------------------------------------------------
# The plugins are built from the same package versions as the runtime (see Tools/protoc-plugins).
protos:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler" >&2; exit 1; }
	$(SWIFT) build -c release --package-path $(PLUGINS_PKG) --product protoc-gen-swift
	$(SWIFT) build -c release --package-path $(PLUGINS_PKG) --product protoc-gen-grpc-swift-2
	@bin=$$($(SWIFT) build -c release --package-path $(PLUGINS_PKG) --show-bin-path); \
	mkdir -p $(GENERATED); \
	protoc \
	  --plugin=protoc-gen-swift=$$bin/protoc-gen-swift \
	  --plugin=protoc-gen-grpc-swift-2=$$bin/protoc-gen-grpc-swift-2 \
	  --proto_path=Protos \
	  --swift_opt=Visibility=Public --swift_opt=FileNaming=DropPath --swift_out=$(GENERATED) \
	  --grpc-swift-2_opt=Visibility=Public --grpc-swift-2_opt=FileNaming=DropPath \
	  --grpc-swift-2_out=$(GENERATED) \
	  Protos/kiam.proto
	@echo "generated into $(GENERATED)"

check-protos: protos
	@git diff --exit-code -- $(GENERATED) && test -z "$$(git status --porcelain -- $(GENERATED))" \
	  || { echo "generated code is stale: run 'make protos' and commit" >&2; exit 1; }

# --- certificates ----------------------------------------------------------------------------
certs:
	@scripts/make-certs.sh $(CERTS_DIR)

# For clusters without cert-manager: NAMESPACE=kube-system unless given.
NAMESPACE ?= kube-system
secrets:
	@scripts/make-secrets.sh $(CERTS_DIR) $(NAMESPACE)

manifests:
	@command -v kubectl >/dev/null || { echo "kubectl missing; the tests render manifests/ without it" >&2; exit 1; }
	kubectl kustomize manifests/

clean:
	rm -rf .build $(PLUGINS_PKG)/.build $(CERTS_DIR)

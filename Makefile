# WebSocket Manager. `make help` lists the targets.
include deploy/toolchain/versions.env

SHELL    := /bin/bash
TOOLS    := $(CURDIR)/.tools
BIN      := $(TOOLS)/bin
STAMPS   := $(TOOLS)/stamps
BUF      := $(TOOLS)/npm/node_modules/.bin/buf
GO_PKGS  := ./...

export PATH := $(BIN):$(PATH)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

# What the machine must provide, checked first by run, check and test: a missing thing stops the
# target in its first second with the command that installs it (as root with apt, it installs
# the Debian packages itself). The README's prerequisites list is deploy/toolchain/prereqs.sh's.
.PHONY: prereqs prereqs-run prereqs-check
prereqs: ## check (as root with apt: install) what make test needs: redis-server, npm, python3-grpcio, ...
	@deploy/toolchain/prereqs.sh test
prereqs-run:
	@deploy/toolchain/prereqs.sh run
prereqs-check:
	@deploy/toolchain/prereqs.sh check

.PHONY: dapr
dapr: prereqs-run ## the pinned Dapr runtime and CLI in .tools/.dapr/bin: reused from DAPR_RUNTIME_DIR or ~/.dapr/bin, else built
	@deploy/toolchain/build-dapr.sh $(TOOLS)

# Generators at pinned versions; a stamp per version makes a version bump reinstall.
$(STAMPS)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@mkdir -p $(STAMPS) && touch $@
$(STAMPS)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@mkdir -p $(STAMPS) && touch $@
$(STAMPS)/buf-$(BUF_VERSION):
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/npm @bufbuild/buf@$(BUF_VERSION)
	@mkdir -p $(STAMPS) && touch $@
$(STAMPS)/golangci-lint-$(GOLANGCI_LINT_VERSION):
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@mkdir -p $(STAMPS) && touch $@
$(STAMPS)/grpcurl-$(GRPCURL_VERSION):
	GOBIN=$(BIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	@mkdir -p $(STAMPS) && touch $@

# The TypeScript client's toolchain (connect-es), pinned by its package-lock.json.
TS_DIR := clients/typescript
$(TS_DIR)/node_modules/.stamp: $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund
	@touch $@

PROTO_TOOLS := $(STAMPS)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION) \
	$(STAMPS)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION) \
	$(STAMPS)/buf-$(BUF_VERSION) \
	$(TS_DIR)/node_modules/.stamp

PY_DESCRIPTORS := clients/python/websocketmanager/websocketmanager.binpb

.PHONY: grpcurl
grpcurl: $(STAMPS)/grpcurl-$(GRPCURL_VERSION) ## install grpcurl into .tools/bin (for the README's examples)

.PHONY: proto
proto: $(PROTO_TOOLS) ## regenerate the Go, TypeScript and Python code from proto/websocketmanager.proto
	cd proto && $(BUF) generate
	cd $(TS_DIR) && $(BUF) generate --template buf.gen.yaml
	$(BUF) build proto --exclude-source-info -o $(PY_DESCRIPTORS)

.PHONY: proto-check
proto-check: $(PROTO_TOOLS) ## fail when the committed generated code differs from a fresh generation
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && cp -r proto $$tmp/ && \
	(cd $$tmp/proto && $(BUF) generate) && \
	if ! diff -r proto/websocketmanagerv1 $$tmp/proto/websocketmanagerv1; then \
		echo "generated code is stale: run 'make proto' and commit the result" >&2; exit 1; fi
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && mkdir -p $$tmp/clients && cp -r $(TS_DIR) $$tmp/clients/ && cp -r proto $$tmp/ && \
	(cd $$tmp/$(TS_DIR) && $(BUF) generate --template buf.gen.yaml) && \
	if ! diff -r $(TS_DIR)/src/generated $$tmp/$(TS_DIR)/src/generated; then \
		echo "the TypeScript client's generated code is stale: run 'make proto' and commit the result" >&2; exit 1; fi
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && $(BUF) build proto --exclude-source-info -o $$tmp/d.binpb && \
	if ! cmp -s $$tmp/d.binpb $(PY_DESCRIPTORS); then \
		echo "the Python client's descriptors are stale: run 'make proto' and commit the result" >&2; exit 1; fi

# The API reference's C# example against C# generated with Debian's protoc (no C# compiler
# here: the script checks the namespace, client type, calls and properties it uses).
.PHONY: csharp-check
csharp-check: $(STAMPS)/buf-$(BUF_VERSION) ## check the C# example's names in C# generated from the proto (Debian's protoc)
	@deploy/toolchain/check-csharp.sh $(BUF)

.PHONY: build
build: ## build the service, the demo server, the consumer and the dev runner into .tools/bin
	go build -o $(BIN)/ ./cmd/wsmanager ./cmd/wsmctl ./cmd/wsdemo ./cmd/wsconsumer ./cmd/devstack

.PHONY: run
run: prereqs-run dapr build ## run the service with its sidecar, placement, scheduler and a demo WebSocket server
	@$(BIN)/devstack --bin $(BIN) --resources components/inmemory

.PHONY: run-multi
run-multi: prereqs-run dapr build ## two instances + a consumer with Redis: placement, scheduler, then dapr run -f dapr.yaml
	@$(BIN)/devstack --bin $(BIN) --run-file dapr.yaml

.PHONY: bench
bench: prereqs-run dapr ## benchmarks: hot-path Go benchmarks, then the full-stack table (bench/results/<date>.md)
	go test -run '^$$' -bench . -benchmem ./actors/...
	go run ./cmd/wsbench --profile $(BENCHFLAGS)

.PHONY: bench-scale
bench-scale: prereqs-run dapr ## the fleet benchmark, ≤ 10 minutes: 5 instances, 100,000 connections, List, directory cost, failover (bench/results/<date>-scale.md)
	go run ./cmd/wsbench --only fleet,dircost --name scale --profile $(BENCHFLAGS)

# Integration tests are the test files with the build tag `integration` (they need the real Dapr
# runtime, Redis, npm, Python); every other test is a unit test and needs none of that.
INTEGRATION_PKGS = $(sort $(addprefix ./,$(dir $(shell git ls-files --cached --others --exclude-standard '*_test.go' | xargs grep -l '^//go:build integration'))))

.PHONY: vet
vet: ## go vet (also of the integration tests) and gofmt
	@files=$$(git ls-files --cached --others --exclude-standard '*.go' | while read -r f; do [ ! -f "$$f" ] || echo "$$f"; done) && \
	unformatted=$$(gofmt -l $$files) && if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted" >&2; exit 1; fi
	go vet $(GO_PKGS)
	go vet -tags integration $(INTEGRATION_PKGS)

.PHONY: lint
lint: $(STAMPS)/golangci-lint-$(GOLANGCI_LINT_VERSION) ## golangci-lint at the pinned version with .golangci.yml
	golangci-lint run $(GO_PKGS)

# Unit tests use Go's test cache (a package whose code and inputs did not change is not run
# again); UNITFLAGS=-count=1 runs them all.
.PHONY: unit
unit: ## unit and fuzz-corpus tests with -race: no Dapr, Redis, npm, network or other process
	go test -race $(UNITFLAGS) $(GO_PKGS)

.PHONY: check
check: prereqs-check vet lint proto-check csharp-check unit ## the fast tier (< 1 min warm): gofmt, vet, golangci-lint, generated-code check, unit tests

.PHONY: integration
integration: prereqs dapr ## the integration tests (build tag integration) on the real Dapr runtime, with -race
	@[ -n "$(INTEGRATION_PKGS)" ] || { echo "no test file has the build tag integration" >&2; exit 1; }
	go test -race -count=1 -tags integration -timeout 30m $(INTEGRATION_PKGS)

.PHONY: test
test: prereqs check integration ## everything: make check, then the integration tests on the real Dapr runtime

.PHONY: clean
clean: ## remove build outputs and run files (keeps the Dapr toolchain)
	rm -rf $(TOOLS)/run $(BIN)/wsmanager $(BIN)/wsdemo $(BIN)/wsconsumer $(BIN)/devstack

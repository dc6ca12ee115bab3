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

.PHONY: dapr
dapr: ## build the pinned Dapr runtime (daprd, placement, scheduler) and CLI into .tools/.dapr/bin
	@deploy/toolchain/build-dapr.sh $(TOOLS)

# Generators at pinned versions; a stamp per version makes a version bump reinstall.
$(STAMPS)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@mkdir -p $(STAMPS) && touch $@
$(STAMPS)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@mkdir -p $(STAMPS) && touch $@
$(STAMPS)/grpc-gateway-$(GRPC_GATEWAY_VERSION):
	GOBIN=$(BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
	@mkdir -p $(STAMPS) && touch $@
$(STAMPS)/buf-$(BUF_VERSION):
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/npm @bufbuild/buf@$(BUF_VERSION)
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
	$(STAMPS)/grpc-gateway-$(GRPC_GATEWAY_VERSION) \
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

.PHONY: build
build: ## build the service, the demo server, the consumer and the dev runner into .tools/bin
	go build -o $(BIN)/ ./cmd/wsmanager ./cmd/wsmctl ./cmd/wsdemo ./cmd/wsconsumer ./cmd/devstack

.PHONY: run
run: dapr build ## run the service with its sidecar, placement, scheduler and a demo WebSocket server
	@$(BIN)/devstack --bin $(BIN) --resources components/inmemory

.PHONY: run-multi
run-multi: dapr build ## two instances + a consumer with Redis: placement, scheduler, then dapr run -f dapr.yaml
	@$(BIN)/devstack --bin $(BIN) --run-file dapr.yaml

.PHONY: bench
bench: dapr ## benchmarks: hot-path Go benchmarks, then the full-stack table (bench/results/<date>.md)
	go test -run '^$$' -bench . -benchmem ./actors/...
	go run ./cmd/wsbench --profile $(BENCHFLAGS)

.PHONY: vet
vet: ## go vet and gofmt
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted" >&2; exit 1; fi
	go vet $(GO_PKGS)

.PHONY: test
test: dapr proto-check vet ## everything: generated-code check, vet, unit, fuzz-corpus and integration tests with -race
	go test -race -count=1 -timeout 30m $(GO_PKGS)

.PHONY: clean
clean: ## remove build outputs and run files (keeps the Dapr toolchain)
	rm -rf $(TOOLS)/run $(BIN)/wsmanager $(BIN)/wsdemo $(BIN)/wsconsumer $(BIN)/devstack

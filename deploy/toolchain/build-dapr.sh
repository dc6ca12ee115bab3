#!/usr/bin/env bash
# Builds daprd, placement and scheduler (Dapr runtime) and the Dapr CLI from the Go module
# proxy into "$1/.dapr/bin", the layout `dapr run --runtime-path "$1"` expects.
# dapr and cli carry `replace` directives, so `go install mod@version` is refused: each is
# built from a scratch module that copies the upstream go.mod (replaces kept) and go.sum.
# Idempotent: binaries that exist at the pinned version are left alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
root=${1:?usage: build-dapr.sh <runtime dir>}
mkdir -p "$root"
root=$(cd "$root" && pwd)
bin="$root/.dapr/bin"
work="$root/build"
mkdir -p "$bin" "$work"
stamp="$bin/.versions"
want="runtime=$DAPR_RUNTIME_VERSION cli=$DAPR_CLI_VERSION"
if [[ -x $bin/daprd && -x $bin/placement && -x $bin/scheduler && -x $bin/dapr && -f $stamp && $(cat "$stamp") == "$want" ]]; then
	exit 0
fi

# scratch_module <dir> <module> <version>: a module that requires <module>@<version> with its replaces.
scratch_module() {
	local dir=$1 mod=$2 ver=$3 src
	src=$(GOFLAGS=-mod=mod go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -n $src ]] || { echo "cannot download $mod@$ver from the Go module proxy" >&2; exit 1; }
	mkdir -p "$dir"
	sed "s#^module .*#module build.local/$(basename "$dir")#" "$src/go.mod" >"$dir/go.mod"
	cp "$src/go.sum" "$dir/go.sum"
	chmod u+w "$dir/go.mod" "$dir/go.sum"
	printf '\nrequire %s %s\n' "$mod" "$ver" >>"$dir/go.mod"
	# replace directives that point at local folders of the upstream repo cannot work here.
	sed -i -E '/^replace .* => \.\.?\//d' "$dir/go.mod"
	printf 'package main\n' >"$dir/main.go"
}

export GOFLAGS=-mod=mod
echo "building Dapr runtime v$DAPR_RUNTIME_VERSION (first time: several minutes)" >&2
scratch_module "$work/runtime" github.com/dapr/dapr "v$DAPR_RUNTIME_VERSION"
(cd "$work/runtime" &&
	go build -o "$bin/placement" github.com/dapr/dapr/cmd/placement &&
	go build -o "$bin/scheduler" github.com/dapr/dapr/cmd/scheduler &&
	go build -tags stablecomponents \
		-ldflags "-X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_RUNTIME_VERSION" \
		-o "$bin/daprd" github.com/dapr/dapr/cmd/daprd)

echo "building Dapr CLI v$DAPR_CLI_VERSION" >&2
scratch_module "$work/cli" github.com/dapr/cli "v$DAPR_CLI_VERSION"
(cd "$work/cli" &&
	go build -ldflags "-X main.version=$DAPR_CLI_VERSION -X main.apiVersion=1.0 -X github.com/dapr/cli/pkg/standalone.gitcommit=pinned" \
		-o "$bin/dapr" github.com/dapr/cli)

# What `dapr init --slim` would write: a default configuration and an empty components folder.
mkdir -p "$root/.dapr/components"
[[ -f $root/.dapr/config.yaml ]] || cat >"$root/.dapr/config.yaml" <<'YAML'
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprConfig
spec: {}
YAML
echo "$want" >"$stamp"
echo "Dapr toolchain ready in $bin" >&2

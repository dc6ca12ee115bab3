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
# daprd flavour: full (the official build) or dev (see build_daprd); an installed runtime that
# is reused is the official one whatever the flavour.
daprd_flavor=${WSM_DAPR_FLAVOR:-$DAPRD_FLAVOR}
[[ $daprd_flavor == dev || $daprd_flavor == full ]] || { echo "WSM_DAPR_FLAVOR must be dev or full, not \"$daprd_flavor\"" >&2; exit 2; }
want="runtime=$DAPR_RUNTIME_VERSION cli=$DAPR_CLI_VERSION"
[[ $daprd_flavor == full ]] || want+=" daprd=$daprd_flavor" # a full runtime's stamp predates flavours
if [[ -x $bin/daprd && -x $bin/placement && -x $bin/scheduler && -x $bin/dapr && -f $stamp && $(cat "$stamp") == "$want" ]]; then
	# A linked (reused) runtime can change under the link (`dapr init --runtime-version`,
	# `dapr upgrade`): check the version it says, not only the stamp.
	if [[ ! -L $bin/daprd || $("$bin/daprd" --version 2>/dev/null | tail -n 1 || true) == "$DAPR_RUNTIME_VERSION" ]]; then
		exit 0
	fi
	echo "the Dapr runtime linked into $bin is no longer v$DAPR_RUNTIME_VERSION; linking or building it again" >&2
	rm -f "$bin/daprd" "$bin/placement" "$bin/scheduler" "$stamp"
fi

# Reuse an installed runtime of the pinned version instead of building one (minutes): the
# folder $DAPR_RUNTIME_DIR, else ~/.dapr/bin from `dapr init`. Only daprd can tell its version
# (placement and scheduler have no --version), so the three are taken together from a folder
# whose daprd says the pinned version, and linked into $bin. The CLI is still built here: the
# run file needs v$DAPR_CLI_VERSION, which `dapr init` does not install.
reused=""
for dir in "${DAPR_RUNTIME_DIR:-}" "$HOME/.dapr/bin"; do
	[[ -n $dir && -x $dir/daprd && -x $dir/placement && -x $dir/scheduler ]] || continue
	dir=$(cd "$dir" && pwd)
	[[ $dir != "$bin" ]] || continue
	have=$("$dir/daprd" --version 2>/dev/null | tail -n 1 || true)
	if [[ $have != "$DAPR_RUNTIME_VERSION" ]]; then
		echo "not reusing the Dapr runtime in $dir: its daprd is ${have:-of an unknown version}, the project pins $DAPR_RUNTIME_VERSION" >&2
		continue
	fi
	for b in daprd placement scheduler; do ln -sfn "$dir/$b" "$bin/$b"; done
	reused=$dir
	break
done
if [[ -z $reused ]]; then
	# Links of an earlier reuse must not be written through by the build below.
	for b in daprd placement scheduler; do [[ ! -L $bin/$b ]] || rm -f "$bin/$b"; done
fi

# Progress for the quiet minutes of each compile: every `go build -o <bin>/<name>` below says
# what it compiles, says it is still at it every minute, and how long it took.
go() {
	[[ ${1:-} == build ]] || { command go "$@"; return; }
	local out="" prev="" a name start beat rc=0
	for a in "$@"; do
		[[ $prev != -o ]] || out=$a
		prev=$a
	done
	name=$(basename "$out")
	name=${name#.}
	name=${name%.new}
	start=$(date +%s)
	echo "  compiling $name ..." >&2
	(while sleep 60; do echo "  ... still compiling $name ($((($(date +%s) - start) / 60)) min)" >&2; done) &
	beat=$!
	command go "$@" || rc=$?
	kill "$beat" 2>/dev/null || true
	wait "$beat" 2>/dev/null || true
	((rc != 0)) || echo "  $name done in $(($(date +%s) - start)) s" >&2
	return "$rc"
}

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

# build_daprd <output>: daprd of the flavour $daprd_flavor (docs/architecture.md, "The Dapr
# toolchain"). full: the official daprd with its stable components, most of them cloud SDKs.
# dev: daprd's own app (same flags, same runtime) with only the components local runs use,
# registered by a main written here. daprd's component package panics unless a component
# build tag selects (nearly) all of them, and the Go tool refuses to overlay files in the module
# cache, so the dev flavour builds from a copy of the dapr module in which that guard is empty:
# with no tag the package then registers nothing and the cloud SDKs are never compiled.
# placement and scheduler are built from the same copy, so its packages compile once.
dev_module() {
	local src
	src=$(go list -m -f '{{.Dir}}' github.com/dapr/dapr)
	rm -rf dapr && cp -R "$src" dapr && chmod -R u+w dapr
	printf '// Replaces the guard that panics when no component build tag is set.\npackage components\n' >dapr/cmd/daprd/components/zz_notag.go
	go mod edit -replace github.com/dapr/dapr=./dapr
	mkdir -p daprd-dev
	cat >daprd-dev/main.go <<'GO'
// Command daprd-dev is the development daprd written by deploy/toolchain/build-dapr.sh: the
// official daprd app with only the components the project and local runs use. Production
// runs the official daprd.
package main

import (
	"github.com/dapr/components-contrib/nameresolution/mdns"
	"github.com/dapr/components-contrib/nameresolution/sqlite"
	pubsubinmemory "github.com/dapr/components-contrib/pubsub/in-memory"
	pubsubredis "github.com/dapr/components-contrib/pubsub/redis"
	"github.com/dapr/components-contrib/secretstores/local/env"
	"github.com/dapr/components-contrib/secretstores/local/file"
	stateinmemory "github.com/dapr/components-contrib/state/in-memory"
	stateredis "github.com/dapr/components-contrib/state/redis"
	"github.com/dapr/dapr/cmd/daprd/app"
	nrloader "github.com/dapr/dapr/pkg/components/nameresolution"
	pubsubloader "github.com/dapr/dapr/pkg/components/pubsub"
	secretstoresloader "github.com/dapr/dapr/pkg/components/secretstores"
	stateloader "github.com/dapr/dapr/pkg/components/state"
)

func main() {
	// The names are those of the official daprd: components/*.yaml work unchanged.
	stateloader.DefaultRegistry.RegisterComponent(stateredis.NewRedisStateStore, "redis")
	stateloader.DefaultRegistry.RegisterComponent(stateinmemory.NewInMemoryStateStore, "in-memory")
	pubsubloader.DefaultRegistry.RegisterComponent(pubsubredis.NewRedisStreams, "redis")
	pubsubloader.DefaultRegistry.RegisterComponent(pubsubinmemory.New, "in-memory")
	secretstoresloader.DefaultRegistry.RegisterComponent(env.NewEnvSecretStore, "local.env")
	secretstoresloader.DefaultRegistry.RegisterComponent(file.NewLocalSecretStore, "local.file")
	nrloader.DefaultRegistry.RegisterComponent(mdns.NewResolver, "mdns")
	nrloader.DefaultRegistry.RegisterComponent(sqlite.NewResolver, "sqlite")
	app.Run()
}
GO
}

build_daprd() {
	local ldflags="-X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_RUNTIME_VERSION"
	if [[ $daprd_flavor == full ]]; then
		go build -tags stablecomponents -ldflags "$ldflags" -o "$1" github.com/dapr/dapr/cmd/daprd
	else
		go build -ldflags "$ldflags" -o "$1" ./daprd-dev
	fi
}

export GOFLAGS=-mod=mod
if [[ -n $reused ]]; then
	echo "Dapr runtime v$DAPR_RUNTIME_VERSION: using daprd, placement and scheduler from $reused" >&2
else
echo "building Dapr runtime v$DAPR_RUNTIME_VERSION from the Go module proxy into $bin: about 15-25 minutes the first time on 2 cores, daprd most of it (an installed runtime of this version is reused instead: DAPR_RUNTIME_DIR or ~/.dapr/bin)" >&2
scratch_module "$work/runtime" github.com/dapr/dapr "v$DAPR_RUNTIME_VERSION"
# Binaries are written under a temporary name and moved into place: a test may be starting
# the old one right now.
(cd "$work/runtime" &&
	{ [[ $daprd_flavor == full ]] || dev_module; } &&
	go build -o "$bin/.placement.new" github.com/dapr/dapr/cmd/placement &&
	mv -f "$bin/.placement.new" "$bin/placement" &&
	go build -o "$bin/.scheduler.new" github.com/dapr/dapr/cmd/scheduler &&
	mv -f "$bin/.scheduler.new" "$bin/scheduler" &&
	build_daprd "$bin/.daprd.new" &&
	mv -f "$bin/.daprd.new" "$bin/daprd")
fi

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

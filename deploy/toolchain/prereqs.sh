#!/usr/bin/env bash
# Checks what a make target needs from the machine before it starts, so that a fresh machine
# fails in its first seconds with what to install instead of minutes later in a test. As root
# with apt-get (CI, containers), or with passwordless sudo, it installs the missing Debian
# packages itself; otherwise, or with WSM_NO_INSTALL=1, it prints one line naming each missing thing and how to install it,
# and fails. The README's prerequisites list is this script's list; .ci/run calls it too.
#
#   prereqs.sh run    make run / run-multi / bench: Go (the Dapr runtime is built with it)
#   prereqs.sh check  make check: Go, git (gofmt's file list), protoc (protobuf-compiler: the
#                     C# check); npm only while buf or the TypeScript client's node_modules
#                     are not installed yet
#   prereqs.sh test   make test: all of check, plus npm (TypeScript client), redis-server,
#                     Debian's python3-grpcio and python3-protobuf (Python client), its
#                     python3-setuptools, -wheel, -pip and -venv (the wheel's test), curl,
#                     chromium (the browser example's test)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tier=${1:?usage: prereqs.sh run|check|test}

missing=() # "name (how to install it)"
debs=()    # Debian packages that install what is missing

need_deb() { # need_deb <package>: the thing is missing and that Debian package provides it
	missing+=("$1")
	debs+=("$1")
}

# Go at least the go.mod version: an older one fails with "go.mod requires go >= …" much later.
want_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$root/go.mod")
if ! command -v go >/dev/null; then
	missing+=("go >= $want_go (https://go.dev/doc/install)")
else
	have_go=$(go env GOVERSION | sed 's/^go//')
	if [[ $(printf '%s\n%s\n' "$want_go" "$have_go" | sort -V | head -1) != "$want_go" ]]; then
		missing+=("go >= $want_go, found $have_go (https://go.dev/doc/install)")
	fi
fi

case $tier in
run) ;;
check | test)
	command -v git >/dev/null || need_deb git
	# go test -race (every test tier) needs cgo, so a C compiler.
	command -v "$(go env CC 2>/dev/null || echo gcc)" >/dev/null || need_deb gcc
	npm_needed=false
	[[ $tier == test ]] && npm_needed=true
	# The generated-code check runs buf and protoc-gen-es from npm packages; once installed
	# under .tools and clients/typescript/node_modules, make check needs no npm (and no network).
	[[ -x $root/.tools/npm/node_modules/.bin/buf && -f $root/clients/typescript/node_modules/.stamp ]] || npm_needed=true
	if $npm_needed && ! command -v npm >/dev/null; then need_deb npm; fi
	# make check generates the C# client's messages with Debian's protoc (check-csharp.sh).
	command -v protoc >/dev/null || need_deb protobuf-compiler
	if [[ $tier == test ]]; then
		command -v redis-server >/dev/null || need_deb redis-server
		command -v curl >/dev/null || need_deb curl
		# The Python client's test runs on Debian's grpcio and protobuf (no PyPI access needed).
		if ! /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null; then
			[[ -x /usr/bin/python3 ]] || need_deb python3
			/usr/bin/python3 -c 'import grpc' 2>/dev/null || need_deb python3-grpcio
			/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || need_deb python3-protobuf
		fi
		# The installed-package test builds the Python client's wheel with Debian's setuptools
		# and wheel, and installs it with pip into a venv.
		/usr/bin/python3 -c 'import setuptools' 2>/dev/null || need_deb python3-setuptools
		/usr/bin/python3 -c 'import wheel' 2>/dev/null || need_deb python3-wheel
		/usr/bin/python3 -m pip --version >/dev/null 2>&1 || need_deb python3-pip
		/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || need_deb python3-venv
		# The TypeScript client's browser example is tested in Debian's headless Chromium.
		command -v chromium >/dev/null || need_deb chromium
	fi
	;;
*)
	echo "usage: prereqs.sh run|check|test" >&2
	exit 2
	;;
esac

((${#missing[@]})) || exit 0

# Install what apt can install, when we may (root or passwordless sudo, apt-get present, not
# told otherwise).
as_root=""
[[ $(id -u) -eq 0 ]] || as_root="sudo -n"
if ((${#debs[@]})) && [[ -z ${WSM_NO_INSTALL:-} ]] && command -v apt-get >/dev/null &&
	{ [[ -z $as_root ]] || sudo -n true 2>/dev/null; }; then
	echo "make $tier: installing ${debs[*]} with apt-get" >&2
	$as_root apt-get update -q >&2
	$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${debs[@]}" >&2
	WSM_NO_INSTALL=1 exec "$0" "$tier" # check again, once: anything left is reported below
fi

line="make $tier: missing $(IFS=,; echo "${missing[*]}" | sed 's/,/, /g')"
if ((${#debs[@]})); then
	sudo=""
	[[ $(id -u) -eq 0 ]] || sudo="sudo "
	line+=" - install with: ${sudo}apt-get install -y --no-install-recommends ${debs[*]}"
fi
echo "$line" >&2
exit 1

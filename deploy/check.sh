#!/bin/sh
# Checks the release build and the deployment files (make deploy-check):
#  1. the binary deploy/build.sh made runs (mcpauth version) and its build
#     information records the release flags;
#  2. the Dockerfile builds through deploy/build.sh and nothing else, so the
#     image and this build cannot use different flags;
#  3. systemd-analyze verify accepts deploy/mcpauth.service without a single
#     warning, when systemd-analyze is installed (a lint: skipped otherwise).
#
# Usage: deploy/check.sh BINARY   (GO names the go command)
set -eu
bin="$1"
cd "$(dirname "$0")/.."
fail() { echo "deploy-check: $*" >&2; exit 1; }

"$bin" version || fail "$bin version failed"
info=$("${GO:-go}" version -m "$bin")
for want in '-trimpath=true' 'CGO_ENABLED=0'; do
	printf '%s\n' "$info" | grep -qF -- "build	$want" || fail "$bin was not built with $want (go version -m: build settings)"
done
# -trimpath keeps -ldflags out of the build information: -s shows as no
# symbol table.
! "${GO:-go}" tool nm "$bin" >/dev/null 2>&1 || fail "$bin has a symbol table: not built with -ldflags=\"-s -w\""

grep -q '^[^#]*sh deploy/build\.sh' Dockerfile || fail "Dockerfile does not build with deploy/build.sh"
! grep -n 'go build\|go install\|-ldflags\|CGO_ENABLED' Dockerfile || fail "Dockerfile sets build flags of its own; put them in deploy/build.sh"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "deploy-check: systemd-analyze verify skipped: systemd-analyze is not installed"
	exit 0
fi
# verify insists that ExecStart's program exists: point it at the binary
# just built. It exits 0 on unknown keys, so any output is a failure.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
abs=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
sed "s#^ExecStart=/usr/local/bin/mcpauth #ExecStart=$abs #" deploy/mcpauth.service >"$tmp/mcpauth.service"
grep -q "^ExecStart=$abs serve " "$tmp/mcpauth.service" || fail "deploy/mcpauth.service: ExecStart is not /usr/local/bin/mcpauth serve ..."
out=$(systemd-analyze verify "$tmp/mcpauth.service" 2>&1) || fail "systemd-analyze verify deploy/mcpauth.service: $out"
[ -z "$out" ] || fail "systemd-analyze verify deploy/mcpauth.service: $out"
echo "deploy-check: systemd-analyze verify deploy/mcpauth.service: ok"

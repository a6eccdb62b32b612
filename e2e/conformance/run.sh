#!/usr/bin/env bash
# Runs the official MCP conformance suite (npm @modelcontextprotocol/conformance,
# pinned in package-lock.json) with `mcpauth login` as the client under test:
# every scenario of its "auth" suite. The suite starts a scenario's MCP server
# and authorization server on localhost and runs
#   mcpauth login --conformance --client-id URL --call test-tool SERVER_URL
# for each; all traffic stays on loopback. Exits non-zero when any scenario
# fails or warns, or when a scenario listed below did not run.
#
# MCPAUTH_BIN names the binary under test; without it, it is built here.
# The suite's CLI needs Node 22 or newer: the npm package "node" (pinned)
# provides it under node_modules, whatever node runs npm.
set -euo pipefail
cd "$(dirname "$0")"

# The scenarios of the auth suite of the pinned version. A new version that
# adds, renames or drops one makes this script fail until the list is updated.
expected=(
  auth/metadata-default auth/metadata-var1 auth/metadata-var2 auth/metadata-var3
  auth/basic-cimd
  auth/scope-from-www-authenticate auth/scope-from-scopes-supported auth/scope-omitted-when-undefined
  auth/scope-step-up auth/scope-retry-limit
  auth/token-endpoint-auth-basic auth/token-endpoint-auth-post auth/token-endpoint-auth-none
  auth/pre-registration
)

if [ ! -x node_modules/node/bin/node ] || [ ! -f node_modules/@modelcontextprotocol/conformance/dist/index.js ]; then
  npm ci --no-audit --no-fund
fi
node=node_modules/node/bin/node
cli=node_modules/@modelcontextprotocol/conformance/dist/index.js

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=${MCPAUTH_BIN:-}
if [ -z "$bin" ]; then
  bin=$work/mcpauth
  (cd ../.. && go build -o "$bin" ./cmd/mcpauth)
fi
# Tokens and registrations of the run go to a scratch config directory.
export XDG_CONFIG_HOME=$work/config

# The suite's basic-cimd scenario expects this client_id; its authorization
# server never fetches it.
cimd=https://conformance-test.local/client-metadata.json
status=0
"$node" "$cli" client --suite auth --timeout 60000 -o "$work/results" \
  --command "$bin login --conformance --client-id $cimd --call test-tool" | tee "$work/out.txt" || status=$?

missing=0
for s in "${expected[@]}"; do
  if ! ls -d "$work/results/$s"-* >/dev/null 2>&1; then
    echo "conformance: scenario $s did not run" >&2
    missing=$((missing + 1))
  fi
done
ran=$(grep -cE '^[✓✗] auth/' "$work/out.txt" || true)
if [ "$ran" -ne "${#expected[@]}" ]; then
  echo "conformance: the suite ran $ran scenarios, this script expects ${#expected[@]}: update the list" >&2
  missing=$((missing + 1))
fi
passed=$(grep -cE '^✓ auth/' "$work/out.txt" || true)
failed=$(( ${#expected[@]} - passed ))
echo "conformance: $passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$missing" -ne 0 ] || [ "$failed" -ne 0 ]; then
  exit 1
fi

#!/bin/sh
# Builds the release binary of mcpauth: static (no cgo), reproducible paths
# (-trimpath), stripped (-s -w). The Dockerfile and `make build-release` both
# run this script, so the image and CI build with the same flags.
#
# Usage: deploy/build.sh [OUT]   (default bin/release/mcpauth; GO names the go command)
set -eu
out="${1:-bin/release/mcpauth}"
CGO_ENABLED=0 exec "${GO:-go}" build -trimpath -ldflags="-s -w" -o "$out" ./cmd/mcpauth

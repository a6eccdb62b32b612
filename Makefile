# make test is the one command that runs every check and test (the README and .ci/run use it).
GO ?= go
# Pinned, and run through go run, so nothing must be installed first.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test tools lint unit build build-release deploy-check bench e2e e2e-bin e2e-deps screenshot conformance

test: tools lint deploy-check unit e2e conformance

# tools stops make test at once, in one line, when a program it needs is
# missing (Go modules, staticcheck and the npm packages are fetched as needed).
tools:
	@missing=""; \
	  for c in $(GO) node npm openssl; do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	  [ -x "$${E2E_CHROMIUM:-/usr/bin/chromium}" ] || missing="$$missing chromium"; \
	  if [ -n "$$missing" ]; then echo "make test: missing:$$missing (install them, e.g. apt-get install golang nodejs npm openssl chromium, or run .ci/run, which does)"; exit 1; fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './e2e/node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 ./...

build:
	$(GO) build -o bin/mcpauth ./cmd/mcpauth

# The release binary (static, -trimpath, stripped), built by deploy/build.sh
# exactly as the Dockerfile builds it.
build-release:
	GO=$(GO) sh deploy/build.sh bin/release/mcpauth

# Checks the release build's flags, that the Dockerfile uses deploy/build.sh,
# and deploy/mcpauth.service with systemd-analyze verify when installed.
deploy-check: build-release
	GO=$(GO) sh deploy/check.sh bin/release/mcpauth

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# End-to-end tests with real third-party MCP clients (docs/testing.md, "End-to-end
# tests"): builds mcpauth and the example MCP server into E2E_BIN and runs the
# Node tests against them. The Go SDK end-to-end test (e2e/*_test.go) runs
# with unit.
E2E_BIN ?= $(CURDIR)/bin/e2e

e2e-bin:
	$(GO) build -o $(E2E_BIN)/mcpauth ./cmd/mcpauth
	$(GO) build -o $(E2E_BIN)/mcpserver ./examples/mcpserver

e2e-deps:
	@cd e2e && if [ ! -d node_modules/@modelcontextprotocol/sdk ] || [ ! -d node_modules/@modelcontextprotocol/server-everything ]; then npm ci --no-audit --no-fund; fi

e2e: e2e-bin e2e-deps
	cd e2e && E2E_MCPAUTH_BIN=$(E2E_BIN)/mcpauth E2E_MCPSERVER_BIN=$(E2E_BIN)/mcpserver npm test

# Regenerates docs/consent-localhost.png with headless Chromium.
screenshot: e2e-bin e2e-deps
	cd e2e && E2E_MCPAUTH_BIN=$(E2E_BIN)/mcpauth E2E_MCPSERVER_BIN=$(E2E_BIN)/mcpserver npm run screenshot

# The official MCP conformance suite's auth client scenarios, with mcpauth
# login as the client under test (docs/client.md, "Conformance").
conformance: e2e-bin
	MCPAUTH_BIN=$(E2E_BIN)/mcpauth bash e2e/conformance/run.sh

# Relay — make run starts the demo (embedded SQLite + in-process Klaviyo
# simulator); make test runs the whole suite. Both install what they need.
GO        ?= go
BIN       := build/relay
GOFLAGS   ?=
export GONOSUMDB := github.com/rudderlabs/analytics-go
# Every machine here runs PostgreSQL, NATS and (after setup) Chromium: tests
# that need them fail rather than skip when they are missing.
export RELAY_REQUIRE_SERVICES := 1

.PHONY: run test build deps vet fmt bench fuzz clean

build: deps
	$(GO) build -o $(BIN) ./cmd/relay

deps:
	@scripts/setup.sh go

run: build
	$(BIN) serve --demo --addr 127.0.0.1:8080 --data ./data

test: deps
	@scripts/setup.sh test
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 12m ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf build

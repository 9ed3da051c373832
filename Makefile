# Relay — make run starts the demo (embedded SQLite + in-process Klaviyo
# simulator); make test runs the whole suite. Both install what they need.
GO        ?= go
BIN       := build/relay
GOFLAGS   ?=
export GONOSUMDB := github.com/rudderlabs/analytics-go
# Every machine here runs PostgreSQL, NATS and (after setup) Chromium: tests
# that need them fail rather than skip when they are missing.
export RELAY_REQUIRE_SERVICES := 1

.PHONY: run test build deps vet fmt bench fuzz soak clean release

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
	@$(MAKE) --no-print-directory fuzz

fmt:
	gofmt -w $$(git ls-files '*.go')

# make bench: transform, ingest, delivery and memory figures on this machine
# (about 10 minutes on 2 cores; BENCHFLAGS=-quick for about 3). Results go
# to build/bench/results.{json,md}; see docs/BENCHMARKS.md.
BENCHFLAGS ?=
bench: build
	$(GO) run ./bench/cmd/relaybench -relay $(BIN) -out build/bench $(BENCHFLAGS)

# make fuzz: each native fuzz target of the ingest parser, the gateway and
# the mapping for a fixed number of inputs. A count, not a duration: Go
# 1.26's coordinator can fail a time-bounded run at its deadline (see
# internal/gateway/fuzz_test.go).
FUZZTIME    ?= 2000x
# One target per line, so that branches adding targets merge cleanly.
FUZZ_TARGETS :=
FUZZ_TARGETS += internal/gateway:FuzzHandler
FUZZ_TARGETS += internal/spec:FuzzParse
FUZZ_TARGETS += internal/spec:FuzzSplit
FUZZ_TARGETS += internal/spec:FuzzEncode
FUZZ_TARGETS += internal/spec:FuzzValidJSON
FUZZ_TARGETS += internal/jsonx:FuzzAppendString
FUZZ_TARGETS += internal/klaviyo:FuzzTransform
FUZZ_TARGETS += internal/klaviyo:FuzzMap
FUZZ_TARGETS += internal/klaviyo:FuzzIsEmail
FUZZ_TARGETS += internal/klaviyo:FuzzParseSettings
FUZZ_TARGETS += internal/queue:FuzzDecodeInbox
FUZZ_TARGETS += internal/config:FuzzParse
FUZZ_TARGETS += internal/privacy:FuzzApply
FUZZ_TARGETS += internal/usertransform:FuzzJSBridge
FUZZ_TARGETS += internal/eventstream:FuzzReader
FUZZ_TARGETS += internal/klaviyo:FuzzTransformStream
FUZZ_TARGETS += internal/spec:FuzzDecodeValid
FUZZ_TARGETS += internal/deletion:FuzzMatcher
FUZZ_TARGETS += internal/webhook:FuzzParseSettings
FUZZ_TARGETS += internal/forwarded:FuzzClientIP
FUZZ_TARGETS += internal/spec:FuzzParseElement
FUZZ_TARGETS += internal/jsonx:FuzzPlainPrefix
FUZZ_TARGETS += internal/spec:FuzzDecodeObjectKeys
FUZZ_TARGETS += internal/klaviyo:FuzzAppendFloat
FUZZ_TARGETS += internal/spec:FuzzParseUTC
FUZZ_TARGETS += internal/klaviyo:FuzzKlaviyoTime
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ./$$pkg ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./$$pkg/; \
	done

# make soak: the long reliability forms (a multi-minute Klaviyo outage,
# repeated SIGKILLs over minutes of ingest and delivery) and longer fuzzing.
# About 20 minutes.
soak: deps
	RELAY_SOAK=1 $(GO) test -count=1 -timeout 60m -run 'Soak' -v ./test/e2e/
	@$(MAKE) --no-print-directory fuzz FUZZTIME=50000x

# make release: static binaries (CGO_ENABLED=0; the SQLite driver,
# modernc.org/sqlite, is pure Go) for each of PLATFORMS into RELEASE_DIR,
# stamped with VERSION, the commit and the build date (relay version), and
# a SHA256SUMS file. Needs only Go: the cross-compiles need no toolchain.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE  ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PLATFORMS   ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
RELEASE_DIR ?= build/release
RELEASE_LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)
release:
	@mkdir -p $(RELEASE_DIR)
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%%/*}; arch=$${p##*/}; out=$(RELEASE_DIR)/relay-$(VERSION)-$$os-$$arch; \
		echo "build $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(RELEASE_LDFLAGS)" -o $$out ./cmd/relay; \
	done
	@cd $(RELEASE_DIR) && sha256sum relay-$(VERSION)-* > SHA256SUMS && cat SHA256SUMS

clean:
	rm -rf build

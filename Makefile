# Relay — make run starts the demo (embedded SQLite + in-process Klaviyo
# simulator); make test runs the whole suite. Both install what they need.
GO        ?= go
BIN       := build/relay
GOFLAGS   ?=
export GONOSUMDB := github.com/rudderlabs/analytics-go
# Every machine here runs PostgreSQL, NATS and (after setup) Chromium: tests
# that need them fail rather than skip when they are missing.
export RELAY_REQUIRE_SERVICES := 1

.PHONY: run test build deps vet fmt bench fuzz soak clean

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
FUZZ_TARGETS := internal/gateway:FuzzHandler internal/spec:FuzzParse internal/spec:FuzzSplit internal/spec:FuzzEncode internal/spec:FuzzValidJSON internal/jsonx:FuzzAppendString \
	internal/klaviyo:FuzzTransform internal/klaviyo:FuzzMap internal/queue:FuzzDecodeInbox \
	internal/deletion:FuzzMatcher
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

clean:
	rm -rf build

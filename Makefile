# make test installs what the suite needs (scripts/deps.sh) and runs it the
# way CI does. The end-to-end tests start real Vite and Nuxt processes.
GO ?= go
TESTFLAGS ?=

.PHONY: test deps vet fuzz bench

test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 45m $(TESTFLAGS) ./...

deps:
	./scripts/deps.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: the files above are not formatted"; exit 1; }

# fuzz runs every fuzz target (each a parser of untrusted input) for
# FUZZTIME (default 60s each).
FUZZTIME ?= 60s
FUZZ_TARGETS = \
	./hotfile:FuzzParse \
	./ssrproxy:FuzzTokens ./ssrproxy:FuzzFrameTracker \
	./vite:FuzzParseMessage ./vite:FuzzParsePackageJSON \
	./preview:FuzzCleanPath ./preview/internal/deps:FuzzParse ./preview/internal/deps:FuzzCheckSpec \
	./preview:FuzzStripJSONC \
	./preview:FuzzValidID ./preview:FuzzParseOrigin
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run=NONE -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

# bench measures on this machine and prints one table (see README.md).
bench:
	./scripts/deps.sh
	$(GO) run ./internal/cmd/bench $(BENCHFLAGS)

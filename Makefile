# make test installs what the suite needs (scripts/deps.sh) and runs it the
# way CI does. The end-to-end tests start real Vite and Nuxt processes.
GO ?= go
TESTFLAGS ?=

.PHONY: test deps vet fuzz

test: deps
	$(GO) vet ./...
	$(GO) test -race -timeout 30m $(TESTFLAGS) ./...

deps:
	./scripts/deps.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: the files above are not formatted"; exit 1; }

# fuzz runs each fuzz target for FUZZTIME (default 60s).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run=NONE -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./hotfile/

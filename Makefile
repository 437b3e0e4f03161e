# Posthorn — see README.md. Every target works on a fresh Debian 12 machine
# after .ci/setup has installed the packages the tests need.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
GO      ?= go
export CGO_ENABLED := 1

.PHONY: all build run test unit e2e bench fuzz lint clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/posthorn ./cmd/posthorn

# The first README command: Posthorn on its bundled sample maillog.
run: build
	./bin/posthorn parse --sample

# Everything CI runs: lint, unit and end-to-end tests (a real private Postfix).
test: lint
	$(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) package-test

unit:
	$(GO) test -short -count=1 ./...

e2e:
	$(GO) test -count=1 -timeout 30m ./e2e/...

# Performance targets live here, never in timed tests. See README "Performance".
# The end-to-end figures (1M-line replay, side by side with pflogsumm) and
# the component benchmarks. The machine is shared and noisy: the e2e
# benchmarks report medians of alternating runs and ratios.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 60m ./e2e
	$(GO) test -run '^$$' -bench . -count 1 -timeout 30m ./logtail ./sqlite ./dispatcher

# Every fuzz target in turn (go test fuzzes one target of one package at a
# time); FUZZTIME per target.
FUZZTIME ?= 60s
FUZZ_TARGETS = ./logtail:FuzzParse ./milter:FuzzParse ./config:FuzzParse ./blocks:FuzzParseDSN ./ui:FuzzAPI
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin dist test-output

# Packages (README "Install"): nfpm, pinned in go.mod as a tool, packs
# bin/posthorn, its man page, the unit, the config and the maintainer
# scripts listed in packaging/nfpm.yaml into dist/. Native builds only:
# the binary uses cgo (SQLite).
PKG_VERSION = $(shell sh packaging/version.sh)
PKG_ARCH    = $(shell $(GO) env GOARCH)

.PHONY: deb rpm package-test

deb rpm: build
	./bin/posthorn help man | gzip -9n > bin/posthorn.1.gz
	@mkdir -p dist
	@# Old versions would make "apt-get install ./dist/posthorn_*.deb" ambiguous.
	rm -f dist/posthorn*.$@
	PKG_VERSION='$(PKG_VERSION)' PKG_ARCH='$(PKG_ARCH)' \
	PKG_GLIBC=$$(objdump -T bin/posthorn | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1 | cut -d_ -f2) \
		$(GO) tool nfpm package --config packaging/nfpm.yaml --packager $@ --target dist/

# Installs the .deb on this machine, runs it as the unit would, purges it
# (e2e/package_test.go). Root only; meant for CI and throw-away machines.
package-test: deb rpm
	@if [ "$$(id -u)" -ne 0 ]; then echo "package-test: skipped: installing the .deb needs root"; exit 0; fi; \
	echo "POSTHORN_PACKAGE_TEST=1 $(GO) test -count=1 -timeout 10m -run 'TestPackage' ./e2e/"; \
	POSTHORN_PACKAGE_TEST=1 $(GO) test -count=1 -timeout 10m -run 'TestPackage' ./e2e/

# baton: the developer's entry points. `make demo` and `make test` are the two set-up
# commands the README promises on a fresh machine.

GO        ?= go
BIN       := $(CURDIR)/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 20s
DEMO_ADDR ?= 127.0.0.1:8080

export PATH := $(PATH):/usr/local/go/bin

.PHONY: all build test faults lint fuzz demo bench package package-check integration fleet cross-test ansible-check clean

all: build

# Static binaries (CGO_ENABLED=0): no dynamic loader at each start of a master (and of
# hello): about 1 ms of CPU per process start on the benchmark's machine.
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/baton ./cmd/baton
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/hello ./examples/hello

# The test suite: formatting, vet, and every test with the race detector.
test: lint
	$(GO) test -race -count=1 ./...

# The whole fault matrix (FAULTS.md; e2e/matrix_cases_test.go), every case under load, with
# the race detector: about 70 s on 2 cores. `make test` runs its fast subset. Cases that
# find a known bug are skipped; BATON_FAULTS_KNOWN=1 runs them too.
faults:
	BATON_FAULTS=all $(GO) test -race -count=1 -timeout 20m -run '^TestFaultMatrix$$' -v ./e2e/

lint: build
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	BATON_BIN=$(BIN)/baton bash units/verify.sh

# Each fuzz target for FUZZTIME (go test runs one -fuzz target at a time). Their seed
# corpora run as ordinary tests in `make test`.
FUZZ_TARGETS := \
	./config:FuzzParse \
	./sdnotify:FuzzParseState \
	./fdstore:FuzzParseListenEnv ./fdstore:FuzzDecodeHeader ./fdstore:FuzzDecodeChunk \
	./fdstore:FuzzLookupSpecs \
	./logging:FuzzJournalEntry ./logging:FuzzPrefixedLine \
	./examples/hello:FuzzParseNames

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; echo "fuzz $$pkg $$name"; \
	  $(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=50x $$pkg; \
	done

# baton standalone on $(DEMO_ADDR) with two reference workers, in the foreground.
demo: build
	@echo
	@echo "baton demo: two hello workers on http://$(DEMO_ADDR)/ (pid file bin/baton.pid)"
	@echo "In another terminal:"
	@echo "  curl -s http://$(DEMO_ADDR)/                 # pid=... generation=1 worker=..."
	@echo "  kill -HUP   \$$(cat bin/baton.pid)            # reload: new workers, then old ones retire"
	@echo "  kill -USR2  \$$(cat bin/baton.pid)            # upgrade: new master from bin/baton, commits after 5s"
	@echo "  kill -WINCH \$$(cat bin/baton.pid)            # stop the workers, keep the sockets"
	@echo "  kill -QUIT  \$$(cat bin/baton.pid)            # graceful stop (TERM: fast stop)"
	@echo
	cd $(BIN) && PATH="$(BIN):$$PATH" ./baton run --pidfile baton.pid --listen http=$(DEMO_ADDR)

# The benchmark, baton beside nginx and HAProxy, standalone and under systemd, then the
# same cycles beside a CPU hog, the health gate and the memory of a reload and an upgrade
# (BENCHMARKS.md). 8½ min on 2 cores before HAProxy, the hog, the gate and the memory rows
# came in (2026-12-06; the whole run is not timed yet); installs Debian's nginx-light and
# haproxy with apt-get if missing; the systemd section needs root (without it the report
# says it was skipped).
bench: build
	$(GO) run ./bench/cmd/driver -out bin/BENCHMARKS-run.md -failures bin/bench-failures.csv

# Every Linux GOARCH (.ci/cross.sh): build and vet for each; the spawn, sdnotify and fdstore
# tests for arm64 and s390x under qemu-user and for 386 natively; baton built for s390x
# serves through spawn's fallback. Root (a user namespace with a binfmt_misc of its own);
# installs qemu-user-static with apt-get if missing. About 1 min with a warm build cache,
# 1-2 min per architecture more on a cold one (the standard library compiled for each).
cross-test:
	bash .ci/cross.sh

# The systemd suite on real systemd 252, 254 and 257 in containers (labtest/README.md):
# root, about 2 minutes, plus a minute per rootfs the first time.
integration:
	bash labtest/run.sh all

# The fleet test (labtest/fleet, README "Upgrading a fleet"): four systemd labs, baton
# installed by the Ansible collection's role, rolled with its playbooks while load runs on
# every host. Root; installs Debian's ansible and go-md2man with apt-get if missing. The
# plays' output goes to bin/fleet/.
fleet:
	bash labtest/fleet/run.sh

# The Ansible collection (ansible/README.md): both playbooks through ansible-playbook
# --syntax-check, ansible-lint (production profile, offline), the modules' and the filter's
# unit tests against the real bin/baton standalone, and ansible-test sanity offline
# (ansible/tests/sanity.sh says what it skips and why). Needs Debian's ansible,
# ansible-lint, python3-venv, python3-voluptuous, python3-pycodestyle, pylint, shellcheck
# and yamllint (.ci/run installs them); no root. 1m36s to 2m50s on 2 shared cores, most of
# it ansible-test sanity. Not part of `make test`, which needs nothing but Go.
ANSIBLE_TMP := $(CURDIR)/bin/ansible

ansible-check: build
	@mkdir -p $(ANSIBLE_TMP)
	@set -e; coll=$$(ansible/collections.sh $(ANSIBLE_TMP)); \
	  printf '[baton]\nh1 ansible_connection=local\n' >$(ANSIBLE_TMP)/inventory; \
	  for p in ansible/playbooks/*.yml; do \
	    ANSIBLE_COLLECTIONS_PATH=$$coll ansible-playbook -i $(ANSIBLE_TMP)/inventory --syntax-check $$p; \
	  done
	cd ansible && ansible-lint
	BATON_BIN=$(BIN)/baton HELLO_BIN=$(BIN)/hello /usr/bin/python3 -m unittest discover -s ansible/tests/unit -v
	ansible/tests/sanity.sh

# .deb and .rpm for each of PACKAGE_ARCHES in dist/ (nfpm, pinned in packaging/build.sh;
# GOARCH cross-builds), and dist/SHA256SUMS of exactly those. The packages of an earlier
# run are removed first. Needs go-md2man (apt-get install go-md2man) for the man pages.
PACKAGE_ARCHES ?= amd64 arm64

package:
	@mkdir -p dist
	rm -f dist/*.deb dist/*.rpm dist/SHA256SUMS
	@set -e; for arch in $(PACKAGE_ARCHES); do GOARCH=$$arch packaging/build.sh $(VERSION) dist; done
	cd dist && sha256sum *.deb *.rpm >SHA256SUMS
	@cat dist/SHA256SUMS

# What a distribution would check, on what `make package` built: lintian, rpmlint and
# man --warnings, each clean or overridden with a reason (packaging/check.sh).
package-check:
	packaging/check.sh dist
	cd dist && sha256sum -c --quiet SHA256SUMS

clean:
	rm -rf $(BIN) dist

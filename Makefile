# Ratings Lab. `make lab up`, `make lab status`, `make lab down`, `make test`.
GO      ?= go
BIN     := bin/lab
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/ratingslab/lab/lab/cli.Version=$(VERSION)

.PHONY: build test test-go test-k6 test-kafka lint staticcheck dashboards plugin lab bench clean apicurio kafka

# bin/lab-part is `lab serve` alone (lab/cmd/lab-part): the supervisor runs
# the parts with it when it is beside bin/lab and not older (each part then
# keeps ~7 MiB less resident, docs/benchmarks.md); the touch keeps it newer
# when go build found it up to date. Both are static (no cgo, as in the
# compose image): no libc mapped into every process (~1.5 MiB each).
# bin/lab-supervisor is `lab supervise` alone: `lab up` starts it when it is
# beside bin/lab and not older (~8 MiB less resident, docs/benchmarks.md).
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./lab/cmd/lab
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)-part ./lab/cmd/lab-part
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)-supervisor ./lab/cmd/lab-supervisor
	@touch $(BIN)-part $(BIN)-supervisor

# `make lab up|down|status|...`: the words after `lab` are passed to bin/lab.
ifeq (lab,$(firstword $(MAKECMDGOALS)))
  LAB_ARGS := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
  $(eval $(LAB_ARGS):;@:)
endif
lab: build
	./$(BIN) $(LAB_ARGS)

# The whole suite: unit tests, end-to-end tests on real processes, the k6
# type-check and the dashboards check. LAB_E2E=0 skips the end-to-end tests.
# Apicurio (for the registry contract suite) and Apache Kafka (for the replay
# tools' and the real-cluster passes) are fetched once into .cache/.
test: build lint apicurio kafka test-k6 test-go test-kafka

# Unit suites (every package but the end-to-end tests) run under the race
# detector; the end-to-end tests start the real binary and run without it.
# The end-to-end tests mostly wait (fault windows, drains, restarts), so they
# run side by side with the unit suites, E2E_PARALLEL labs at a time, each lab
# on its own port block (labtest.FreePortBase). The timing-sensitive ones
# (E2E_ALONE: kills under load, the bench, the overload and restore-time
# measurements, the fault schedule within 100 ms, the samples, client errors,
# call counts and catalog edit inside each fault window, Apicurio's JVM
# starting within lab up's bound) run afterwards on their own. A new
# end-to-end test calls t.Parallel() after labtest.SkipUnlessE2E, or joins E2E_ALONE.
# lab/load's and lab/faults' timing tests (per-second send counts against the schedule, the
# same request leaving for both variants at the same moment) skip their
# timing checks under -race (raceEnabled), so they run again without it, on
# their own and after the rest, so no other suite steals their CPU.
# UNIT_PARALLEL is -parallel for the unit suites: the ones whose tests each
# start their own broker and mostly wait (services/ratings/stream,
# services/lib/kafkaio, services/webserver/stream) call t.Parallel(); go
# test's default (GOMAXPROCS, 2 here) would run only two of them at a time.
E2E_PARALLEL  ?= 6
UNIT_PARALLEL ?= 8
E2E_ALONE     := ^(TestTorture|TestBenchPostSearchesBothVariantsAndTheirBareHops|TestOverloadExperiment|TestRebalanceRestoresFromTheChangelog|TestChaos|TestSchemaChangeExperiment|TestMoviesCatalogEditExperiment|TestEvidenceIsExact|TestRPCResilience|TestAvroOnApicurio)$$
# The Grafana plugin's module (its own go.mod; one real chaos run on its
# own port block) runs beside them too, not after the timing-sensitive ones.
test-go:
	@e2e=$$(mktemp); plugin=$$(mktemp); \
	  $(GO) test -count=1 -timeout 25m -parallel $(E2E_PARALLEL) -skip '$(E2E_ALONE)' ./lab/e2e >$$e2e 2>&1 & pid=$$!; \
	  (cd $(PLUGIN) && $(GO) test -race -count=1 -timeout 10m ./...) >$$plugin 2>&1 & ppid=$$!; \
	  echo "go test ./lab/e2e (-parallel $(E2E_PARALLEL), all but E2E_ALONE) and the $(PLUGIN) module run alongside the unit suites; their output follows theirs"; \
	  $(GO) test -race -count=1 -timeout 20m -parallel $(UNIT_PARALLEL) $$($(GO) list ./... | grep -v '/lab/e2e$$'); unit=$$?; \
	  wait $$ppid; prc=$$?; cat $$plugin; rm -f $$plugin; \
	  wait $$pid; rc=$$?; cat $$e2e; rm -f $$e2e; [ $$unit = 0 ] && [ $$prc = 0 ] && [ $$rc = 0 ]
	$(GO) test -count=1 -timeout 15m -run '$(E2E_ALONE)' ./lab/e2e
	$(GO) test -count=1 -timeout 5m -run 'TestRunHoldsTheTargetRate|TestEveryVariantGetsTheSameSequenceAtTheSameMoments|TestAStallingServerShowsInP99' ./lab/load
	$(GO) test -count=1 -timeout 5m -run 'TestTimedFaultHealsItselfOnSchedule' ./lab/faults

# Node.js (18 or newer) and npm type-check the k6 scripts; say which is missing.
test-k6:
	@missing=""; for t in node npm; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	  if [ -n "$$missing" ]; then echo "test-k6: missing:$$missing. Node.js (18 or newer) and npm type-check the k6 scripts: install them (Debian: apt-get install nodejs npm; .ci/run does)" >&2; exit 1; fi
	cd loadtests && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && ./typecheck.sh

# The log variant again on real Apache Kafka (three KRaft nodes from the
# jars `make kafka` fetches), after the kfake suites: the stream end-to-end
# tests, the replay tools (with Kafka's own kafka-consumer-groups), the
# shipped log-variant experiments (shortened), the cluster's faults, and
# transactional delivery with the experiments that run on either platform;
# and the compose stack run natively on real Kafka (kafka-init.sh itself,
# Apicurio on its KafkaSQL storage).
# The two packages run side by side. KAFKA_PARALLEL is how many of the
# end-to-end tests' labs (three Kafka JVMs each) run at once: 1, since two or
# three clusters starting together on 2 loaded cores overran lab up's
# 3-minute bound here; raise it on a machine with room.
# LAB_E2E=0 skips it with the other end-to-end tests.
KAFKA_E2E      := TestStream|TestReplayTooling|TestCluster|TestTransactional
KAFKA_PARALLEL ?= 1
test-kafka: kafka
	@if [ "$${LAB_E2E:-1}" = 0 ]; then echo "test-kafka: skipped (LAB_E2E=0)"; else \
	  LAB_E2E_KAFKA=cluster $(GO) test -count=1 -timeout 15m -parallel $(KAFKA_PARALLEL) -run '$(KAFKA_E2E)|TestComposeStackRunsNatively' ./lab/e2e ./compose; fi

# staticcheck (honnef.co/go/tools, from the Go module proxy), built once into
# the ignored .cache/, one folder per version.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := .cache/staticcheck-$(STATICCHECK_VERSION)/staticcheck
staticcheck: $(STATICCHECK)
$(STATICCHECK):
	GOBIN=$(CURDIR)/$(dir $(STATICCHECK)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# gofmt, no conflict markers, go vet, staticcheck (any finding fails; a
# deliberate exception is a //lint:ignore with its reason), tidy go.mod files.
lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './loadtests/node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@if git grep -nE '^(<<<<<<<|>>>>>>>)( |$$)' -- . >/dev/null 2>&1; then echo "merge conflict markers left:"; git grep -nE '^(<<<<<<<|>>>>>>>)( |$$)' -- .; exit 1; fi
	$(GO) vet ./...
	cd $(PLUGIN) && $(GO) vet ./...
	$(STATICCHECK) ./...
	cd $(PLUGIN) && $(CURDIR)/$(STATICCHECK) ./...
	@# go.mod lists exactly what the code imports (direct deps without // indirect).
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1; }
	@cd $(PLUGIN) && $(GO) mod tidy -diff || { echo "$(PLUGIN)/go.mod/go.sum are not tidy: run 'go mod tidy' there"; exit 1; }

dashboards:
	$(GO) run ./dashboards/cmd/gendashboards

# The Grafana data source plugin (its own Go module: the plugin SDK's
# dependencies stay out of the lab's) into the folder Grafana loads:
# dashboards/plugin/dist holds plugin.json, module.js, img/ and the backend
# gpx_lab_<os>_<arch> for each of PLUGIN_PLATFORMS (this machine's by
# default; compose on another machine: PLUGIN_PLATFORMS="linux/amd64 linux/arm64").
PLUGIN           := dashboards/plugin
PLUGIN_DIST      := $(PLUGIN)/dist
PLUGIN_PLATFORMS ?= $(shell $(GO) env GOOS)/$(shell $(GO) env GOARCH)
plugin:
	rm -rf $(PLUGIN_DIST) && mkdir -p $(PLUGIN_DIST)/img
	cp $(PLUGIN)/plugin.json $(PLUGIN)/module.js $(PLUGIN)/README.md $(PLUGIN_DIST)/
	cp $(PLUGIN)/img/* $(PLUGIN_DIST)/img/
	for p in $(PLUGIN_PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; \
	  (cd $(PLUGIN) && CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w" -o dist/gpx_lab_$${os}_$${arch} .) || exit 1; done
	@echo "plugin ratingslab-lab-datasource built in $(PLUGIN_DIST): point GF_PATHS_PLUGINS at a folder holding it and allow it unsigned (GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=ratingslab-lab-datasource)"

# Apache Kafka from Maven Central into .cache/kafka (a distribution's libs/),
# for `lab up --kafka cluster`; skipped when the pom did not change.
kafka:
	./platform/kafka/fetch.sh

bench: build
	./$(BIN) bench

clean:
	rm -rf bin $(PLUGIN_DIST)

# Apicurio Registry (io.apicurio:apicurio-registry-app, the `all` tar.gz
# assembly) from Maven Central, unpacked into .cache/apicurio/ for
# `lab up --registry apicurio` and the registry contract suite. 3.0.x is the
# newest line that runs on Java 17; 3.1 and later need Java 21.
APICURIO_VERSION ?= 3.0.9
APICURIO_HOME    := .cache/apicurio/apicurio-registry-app
apicurio: $(APICURIO_HOME)/apicurio-registry-app-$(APICURIO_VERSION)-runner.jar

$(APICURIO_HOME)/apicurio-registry-app-$(APICURIO_VERSION)-runner.jar:
	mkdir -p .cache/apicurio
	mvn -q -B dependency:copy -Dartifact=io.apicurio:apicurio-registry-app:$(APICURIO_VERSION):tar.gz:all -DoutputDirectory=.cache/apicurio
	rm -rf $(APICURIO_HOME).tmp && mkdir -p $(APICURIO_HOME).tmp
	tar -xzf .cache/apicurio/apicurio-registry-app-$(APICURIO_VERSION)-all.tar.gz -C $(APICURIO_HOME).tmp
	rm -rf $(APICURIO_HOME) && mv $(APICURIO_HOME).tmp $(APICURIO_HOME)
	rm -f .cache/apicurio/apicurio-registry-app-$(APICURIO_VERSION)-all.tar.gz
	test -f $@

# cleanroom: `make run` starts a server with the embedded defaults,
# `make test` runs every test. Both install what is missing first.

GO       ?= go
BIN      := bin/cleanroom
DATA     ?= cleanroom-data
ADDR     ?= 127.0.0.1:8080
# Debian packages the server and its tests need: bubblewrap is the sandbox,
# runsc the gVisor one (serve --sandbox=gvisor), python3 the interpreter of
# the sandbox's own tests and of the SDK's, python3-cryptography what the
# Python SDK (sdk/python) needs, mmdebstrap what builds the worker images
# (uidmap lets it do so without root).
DEB_PKGS := bubblewrap runsc python3 python3-cryptography mmdebstrap uidmap
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build ui ui-test-deps images run test bench clean

all: build

deps:
	@missing=""; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	command -v runsc >/dev/null 2>&1 || [ -x /usr/bin/runsc ] || missing="$$missing runsc"; \
	[ -x /usr/bin/python3 ] || missing="$$missing python3"; \
	/usr/bin/python3 -c 'import cryptography' 2>/dev/null || missing="$$missing python3-cryptography"; \
	command -v mmdebstrap >/dev/null 2>&1 || missing="$$missing mmdebstrap"; \
	[ "$$(id -u)" = 0 ] || command -v newuidmap >/dev/null 2>&1 || missing="$$missing uidmap"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The web UI (ui/, TypeScript) is built by Vite into http/uidist/app,
# which the binary embeds; without it the server still builds and serves a
# page saying how to build the UI. npm ci runs again when the lock changes.
ui/node_modules/.package-lock.json: ui/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "cleanroom: npm is missing; install Node.js 20.19 or later to build the web UI" >&2; exit 1; }
	cd ui && npm ci --no-audit --no-fund

ui: ui/node_modules/.package-lock.json
	cd ui && npm run build

# The browser tests drive Debian's chromium (never a downloaded browser).
ui-test-deps: ui
	@[ -x /usr/bin/chromium ] || { echo "installing: chromium"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# cleanroom-worker runs inside the sandbox (table validation, SQL with
# DuckDB); the server finds it beside cleanroom.
build: ui
	$(GO) build -o $(BIN) ./cmd/cleanroom
	$(GO) build -o $(dir $(BIN))cleanroom-worker ./cmd/cleanroom-worker

# The worker images scripts run on, built once per machine into a cache
# every server and test shares (about a minute; env CLEANROOM_IMAGES moves it).
images: deps build
	./$(BIN) images build

run: images
	./$(BIN) serve --addr $(ADDR) --data $(DATA)

test: images ui-test-deps
	$(GO) vet ./...
	CLEANROOM_UI_TESTS=1 $(GO) test -count=1 -timeout 15m ./...
	/usr/bin/python3 -m unittest discover -s sdk/python/tests -v

bench: deps build
	bench/run.sh

clean:
	rm -rf bin

# Shortcuts for developers who have make; the README's commands are ./run serve and ./run test.
.PHONY: install serve test test-fast bench clean

# Models and databases live here unless POSTSIEVE_DATA_DIR says otherwise (as in ./run).
export POSTSIEVE_DATA_DIR ?= $(CURDIR)/var

install:
	./scripts/bootstrap.sh

serve:
	./run serve $(ARGS)

test:
	./run test $(ARGS)

# Unit tests only (skips tests that need the trained default model, a real server or a notebook kernel).
# Not through `./run test`: that also installs Chromium for the report's browser test, skipped here.
test-fast:
	./scripts/bootstrap.sh && POSTSIEVE_DATA_DIR="$${POSTSIEVE_DATA_DIR:-$(CURDIR)/var}" \
		.venv/bin/python -m pytest -m "not behaviour and not e2e and not notebooks" $(ARGS)

bench: install
	mkdir -p var
	.venv/bin/python benchmarks/speed.py --json var/bench-speed.json
	.venv/bin/python benchmarks/realworld.py --json var/bench-realworld.json
	.venv/bin/python benchmarks/http_serving.py --json var/bench-http.json  # needs wrk (DEVELOPERS.md)

clean:
	rm -rf .venv var .pytest_cache

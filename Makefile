# The two commands of the README: `make serve` and `make test`. Both bootstrap .venv first.
PYTHON ?= python3
VENV ?= .venv
# Models and databases live here unless POSTSIEVE_DATA_DIR says otherwise.
export POSTSIEVE_DATA_DIR ?= $(CURDIR)/var

.PHONY: install serve test test-fast bench clean

install:
	@PYTHON=$(PYTHON) VENV=$(VENV) ./scripts/bootstrap.sh

serve: install
	$(VENV)/bin/postsieve serve $(ARGS)

test: install
	$(VENV)/bin/python -m pytest $(ARGS)

# Unit tests only (skips tests that need the trained default model or a real server).
test-fast: install
	$(VENV)/bin/python -m pytest -m "not behaviour and not e2e" $(ARGS)

bench: install
	$(VENV)/bin/python benchmarks/speed.py --json var/bench-speed.json
	$(VENV)/bin/python benchmarks/realworld.py --json var/bench-realworld.json

clean:
	rm -rf $(VENV) var .pytest_cache

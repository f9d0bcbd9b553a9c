# Everything runs inside .venv, created on first use with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test test-services lint format bench bench-decoy bench-people clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11, or run make PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## run: start the site on http://127.0.0.1:8000 (codes are printed in this terminal)
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runserver 127.0.0.1:8000

## serve: the production configuration on the current .env: static files
## collected for WhiteNoise, migrations, then gunicorn (gunicorn.conf.py)
serve: $(STAMP)
	$(BIN)/python manage.py collectstatic --noinput
	$(BIN)/python manage.py migrate --noinput
	exec $(BIN)/gunicorn --config gunicorn.conf.py

## test: run the whole test suite (on DATABASE_URL and CACHE_URL when set)
test: $(STAMP)
	$(BIN)/python -m pytest

# PostgreSQL and Redis on loopback, as .ci/run starts them.
SERVICES_DATABASE_URL ?= postgres://passwordless:passwordless@127.0.0.1:5432/passwordless
SERVICES_CACHE_URL ?= redis://127.0.0.1:6379/0

## test-services: the whole suite again on PostgreSQL and Redis; fails if either
## is not what the run ended up using (REQUIRE_SERVICES)
test-services: $(STAMP)
	DATABASE_URL=$(SERVICES_DATABASE_URL) CACHE_URL=$(SERVICES_CACHE_URL) REQUIRE_SERVICES=1 \
		$(BIN)/python -m pytest

## lint: ruff check and ruff format --check
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## format: rewrite the code in the project's format
format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

## bench: cost per login against a floor and django-allauth, throughput, and
## a slow upstream (bench/README.md); prints a Markdown table. Not a test.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

.PHONY: bench-faults
## bench-faults: 30 people log in while Redis stops and PostgreSQL restarts;
## HTTP 500s and lost logins per fault (bench/README.md). Not a test.
bench-faults: $(STAMP)
	$(BIN)/python -m bench.faults

## bench-decoy: POST /login/ for registered vs unknown numbers with sign-up off
## (the decoy), over HTTP against Vonage's emulator (bench/README.md). Not a test.
bench-decoy: $(STAMP)
	$(BIN)/python -m bench.decoy_timing

## bench-people: a hundred people log in the way people do, against Verify v2;
## codes sent per login and people stranded (bench/README.md). Not a test.
bench-people: $(STAMP)
	$(BIN)/python -m bench.people

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

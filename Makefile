# Two commands for a new machine: `make run` (the dashboard on the sandbox AWS) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The second pass: engine and concurrency tests on PostgreSQL with django-q2 on Redis and two
# qcluster processes per sandbox (see README "Running with PostgreSQL and Redis").
DISTRIBUTED_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
DISTRIBUTED_REDIS_URL ?= redis://127.0.0.1:6379/0
DISTRIBUTED_TESTS := tests/test_runner.py tests/test_operations.py tests/test_ds_command.py \
	tests/test_sweep.py tests/test_faults.py tests/test_histories.py tests/test_crash.py \
	tests/test_e2e.py tests/test_concurrency.py

.PHONY: run test test-distributed services lint check install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	DS_SANDBOX=1 $(PY) manage.py sandbox run

test: $(STAMP)
	$(PY) -m ruff check .
	DJANGO_SECRET_KEY=migrations-check $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

test-distributed: $(STAMP) services
	DATABASE_URL=$(DISTRIBUTED_DATABASE_URL) DS_REDIS_URL=$(DISTRIBUTED_REDIS_URL) \
	DS_QCLUSTER_PROCESSES=2 $(PY) -m pytest $(DISTRIBUTED_TESTS)

# Start this machine's PostgreSQL and Redis unless they already answer.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	  for _ in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { \
	  echo "starting Redis"; mkdir -p /var/lib/redis /var/log/redis; \
	  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
	    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log; \
	  for _ in $$(seq 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done; }

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) var test-artifacts

# The README's two commands: `sudo make up` and `sudo make test`. Both install what is missing.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install up down cleanup test unit integration bench lint clean

install:
	bash scripts/install.sh

up: install
	$(VENV)/bin/k8semu up

down:
	$(VENV)/bin/k8semu down

cleanup:
	$(VENV)/bin/k8semu cleanup

test: install
	$(PY) -m pytest -q

unit: install
	$(PY) -m pytest -q tests/unit

integration: install
	$(PY) -m pytest -q tests/integration tests/test_scenarios.py

bench: install
	$(PY) bench/run.py
	$(PY) bench/services.py
	$(PY) bench/cluster_dns.py
	$(PY) bench/netpol.py
	$(PY) bench/ingress.py

lint:
	$(PY) -m flake8 emulator tests bench

clean:
	rm -rf $(VENV) build *.egg-info

# The README's two commands: `sudo make up` and `sudo make test`. Both install what is missing.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install up down cleanup test slow matrix unit integration bench soak flake lint clean container
FLAKE_RUNS ?= 20
SOAK_MINUTES ?= 10
FLAKE_TESTS ?= tests/conformance tests/integration/test_teardown.py

install:
	bash scripts/install.sh

up: install
	$(VENV)/bin/k8semu up

down:
	$(VENV)/bin/k8semu down

cleanup:
	$(VENV)/bin/k8semu cleanup

test: install
	$(PY) -m pytest -q -m "not slow" --durations=40

# what waits on the wall clock or repeats a long module on a second data plane (kept out of
# make test's 15 minutes)
slow: install
	$(PY) -m pytest -q -m slow

# every scenario again on the flannel and calico data planes, with kube-proxy's iptables and
# nftables modes, and on openflow with kube-proxy beside the controller, the same manifests
# (issues #13 and #14; make test runs them on their specs' data planes)
matrix: install
	$(PY) -m pytest -q scenarios --cni flannel --kube-proxy iptables
	$(PY) -m pytest -q scenarios --cni flannel --kube-proxy nftables
	$(PY) -m pytest -q scenarios --cni calico --kube-proxy iptables
	$(PY) -m pytest -q scenarios --cni calico --kube-proxy nftables
	$(PY) -m pytest -q scenarios --cni openflow --kube-proxy iptables

unit: install
	$(PY) -m pytest -q tests/unit

integration: install
	$(PY) -m pytest -q tests/integration tests/conformance scenarios

bench: install
	$(PY) bench/run.py
	$(PY) bench/services.py
	$(PY) bench/cluster_dns.py
	$(PY) bench/netpol.py
	$(PY) bench/ingress.py
	$(PY) bench/scale.py
	$(PY) bench/termination.py
	$(PY) bench/dns_server.py
	$(PY) bench/api.py
	$(PY) bench/workloads.py
	$(PY) bench/volumes.py
	$(PY) bench/kubeproxy.py
	$(PY) bench/dataplanes.py
	$(PY) bench/calico.py
	$(PY) bench/racks.py
	$(PY) bench/faults.py
	$(PY) bench/components.py
	$(PY) bench/trace.py
	$(PY) bench/ui.py
	$(PY) bench/schemas.py
	$(PY) bench/rbac.py
	$(PY) bench/compare.py

# a random, bounded sequence of changes and faults with invariants after each step (tests/soak.py)
container: install
	bash scripts/container.sh build

soak: install
	$(PY) tests/soak.py --minutes $(SOAK_MINUTES)

# the new integration tests and every scenario, FLAKE_RUNS times; stops at the first failure
flake: install
	for i in $$(seq 1 $(FLAKE_RUNS)); do echo "== run $$i of $(FLAKE_RUNS)"; \
		$(PY) -m pytest -q -x -p no:cacheprovider $(FLAKE_TESTS) || exit 1; done

lint:
	$(PY) -m flake8 emulator tests bench

clean:
	rm -rf $(VENV) build *.egg-info

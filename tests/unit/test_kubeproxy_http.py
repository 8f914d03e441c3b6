"""kube-proxy's health and metrics answers, as kube-proxy words them."""
from __future__ import annotations

import json
import re
import time

from emulator.runtime.kubeproxyhttp import GO_ZERO_TIME, HEALTH_TIMEOUT, NodeServers, go_time

GO_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,9})? \+0000 UTC m=\+\d+\.\d{9}"


def test_times_print_as_go_prints_a_clock_reading():
    assert go_time(1796601600.5, 12.25) == "2026-12-07 00:00:00.5 +0000 UTC m=+12.250000000"
    assert go_time(1796601600.0, 0.0) == "2026-12-07 00:00:00 +0000 UTC m=+0.000000000"


def test_healthz_is_200_while_current_and_503_once_a_change_waits_past_the_timeout():
    state = {"queued": 0.0, "updated": time.time() - 5}
    node = NodeServers("iptables", lambda: (state["queued"], state["updated"]))
    code, headers, body = node.healthz("/healthz")
    shown = json.loads(body)
    assert code == 200 and headers["Content-Type"] == "application/json" and shown["nodeEligible"] is True
    assert re.fullmatch(GO_TIME, shown["lastUpdated"]) and shown["lastUpdated"][:19] == shown["currentTime"][:19]
    assert body.decode().startswith('{"lastUpdated": "') and '","currentTime": "' in body.decode()
    state["queued"] = time.time() - 5  # a change waiting, not late yet
    assert node.healthz("/livez")[0] == 200
    state["queued"] = time.time() - HEALTH_TIMEOUT - 1
    code, _, body = node.healthz("/livez")
    assert code == 503 and set(json.loads(body)) == {"lastUpdated", "currentTime"}
    assert json.loads(body)["lastUpdated"][:19] != json.loads(body)["currentTime"][:19]
    state["updated"] = 0.0
    assert json.loads(node.healthz("/healthz")[2])["lastUpdated"] == GO_ZERO_TIME
    assert node.healthz("/other")[0] == 404


def test_the_metrics_port_says_the_mode_and_counts_syncs():
    node = NodeServers("nftables", lambda: (0.0, time.time()))
    assert node.metrics_port("/proxyMode")[2] == b"nftables"
    assert node.metrics_port("/healthz")[:3:2] == (200, b"ok")
    node.metrics.sync.observe(0.003)
    node.metrics.full.observe(0.003)
    node.healthz("/healthz")
    text = node.metrics_port("/metrics")[2].decode()
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004"} 1.0' in text
    assert "kubeproxy_sync_full_proxy_rules_duration_seconds_count 1.0" in text
    assert 'kubeproxy_proxy_healthz_total{code="200"} 1.0' in text

"""Containment of what runs as root (issue #10), on the whole machine: each test brings its own
cluster (or fails to) and checks what is left afterwards, so none runs beside another cluster."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from pathlib import Path

import pytest

from emulator.model import naming
from tests.cluster import ROOT, Cluster, k8semu, poll
from tests.integration.test_teardown import leftovers, snapshot


# -- ownership, sealing, restoring ------------------------------------------------------------
def ovs_up() -> bool:
    return subprocess.run(["ovs-vsctl", "--timeout=2", "show"], capture_output=True).returncode == 0


def ovs_bridges() -> list[str]:
    return subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True, check=True).stdout.split()


def first_free_prefix(bridges: tuple[str, ...] | list[str] = ()) -> tuple[int, str]:
    """The slot (and its name prefix) a cluster would take now: the tests plant the "user's"
    object there rather than assume slot 0 is free (a run killed midway may hold it)."""
    names = [*os.listdir("/sys/class/net"), *bridges]
    for slot in range(naming.MAX_SLOTS):
        prefix = naming.Scope("any", slot).prefix
        if not any(name.startswith(prefix) for name in names):
            return slot, prefix
    raise AssertionError("no free slot on this machine")


def test_objects_with_our_names_survive_a_failed_up(tmp_path: Path) -> None:
    name = f"clash-{secrets.token_hex(3)}"  # a run killed midway leaves its "user's" namespace: not ours to remove
    netns = f"{name}_node-b"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    slot, prefix = first_free_prefix()
    planted = f"{prefix}ul"
    subprocess.run(["ip", "link", "add", planted, "type", "bridge"], check=True)
    spec = tmp_path / "clash.yaml"
    spec.write_text("apiVersion: k8semu.io/v1alpha1\nkind: Cluster\nmetadata: {name: " + name + "}\nspec:\n"
                    "  nodes: [{name: node-a}, {name: node-b}]\n")
    try:
        done = k8semu("up", str(spec), "--detach", check=False)
        assert done.returncode == 1
        assert f"network namespace {netns} exists and is not k8semu's" in done.stderr, done.stderr
        assert Path(f"/run/netns/{netns}").exists() and Path(f"/sys/class/net/{planted}").exists()
        assert not Path(f"/run/netns/{name}_node-a").exists()
        subprocess.run(["ip", "netns", "del", netns], check=True)
        up = Cluster(str(spec)).up()  # the foreign bridge holds the free slot's name: the cluster takes another
        try:
            assert up.client.status()["slot"] > slot
        finally:
            up.down()
        assert Path(f"/sys/class/net/{planted}").exists()
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        subprocess.run(["ip", "link", "del", planted], capture_output=True)


def test_an_existing_ovs_bridge_of_our_name_is_neither_adopted_nor_deleted(tmp_path: Path) -> None:
    started = not ovs_up()
    if started:
        subprocess.run(["/usr/share/openvswitch/scripts/ovs-ctl", "--no-ovs-vswitchd", "start"], check=True,
                       capture_output=True, env=dict(os.environ, MONITOR="no"))
    slot, prefix = first_free_prefix(ovs_bridges())
    planted, token = f"{prefix}br1", f"pytest-{secrets.token_hex(4)}"
    subprocess.run(["ovs-vsctl", "--no-wait", "add-br", planted, "--", "set", "bridge", planted,
                    f"external_ids:owner={token}"], check=True)
    spec = tmp_path / "clash.yaml"
    spec.write_text("apiVersion: k8semu.io/v1alpha1\nkind: Cluster\nmetadata: {name: clash}\nspec:\n"
                    "  nodes: [{name: node-a}, {name: node-b}]\n")
    try:
        cluster = Cluster(str(spec)).up()  # the free slot's names are not all free: the cluster takes another
        try:
            taken = cluster.client.status()["slot"]
            assert taken > slot
            ours = naming.Scope("clash", taken).prefix
            assert cluster.bridge("node-b") == f"{ours}br1"
        finally:
            cluster.down()
        bridges = ovs_bridges()
        assert planted in bridges and not [b for b in bridges if b.startswith(ours)]
        ids = subprocess.run(["ovs-vsctl", "get", "bridge", planted, "external_ids"], capture_output=True,
                             text=True).stdout
        assert token in ids and "k8semu" not in ids
    finally:
        ids = subprocess.run(["ovs-vsctl", "--if-exists", "get", "bridge", planted, "external_ids"],
                             capture_output=True, text=True).stdout
        if token in ids:  # only the bridge this test made
            subprocess.run(["ovs-vsctl", "--no-wait", "del-br", planted], capture_output=True)
        if started:
            subprocess.run(["/usr/share/openvswitch/scripts/ovs-ctl", "stop"], capture_output=True)


DB = "/etc/openvswitch/conf.db"


def db_select(table: str, column: str) -> list:
    query = json.dumps(["Open_vSwitch", {"op": "select", "table": table, "where": [], "columns": [column]}])
    if ovs_up():
        got = json.loads(subprocess.run(["ovs-vsctl", "--format=json", f"--columns={column}", "list", table],
                                        capture_output=True, text=True, check=True).stdout)
        return [row[0] for row in got["data"]]
    got = subprocess.run(["ovsdb-tool", "query", DB, query], capture_output=True, text=True, check=True).stdout
    return [row[column] for row in json.loads(got)[0]["rows"]]


def test_what_a_machine_restart_leaves_in_the_ovs_database_is_avoided_then_cleaned_up(tmp_path: Path) -> None:
    """The OVS database is a file: a run killed with the machine leaves its tagged bridges (and a
    changed setting) there, and no run directory names them after /run is wiped."""
    if ovs_up():
        pytest.skip("Open vSwitch runs here: this test writes its database file, which it may do only when not")
    ghost = "k8semu:ghost:0000ffff"
    transact = ["Open_vSwitch",
                {"op": "insert", "table": "Bridge", "uuid-name": "ghost",
                 "row": {"name": "k8s0-br0", "datapath_type": "netdev",
                         "external_ids": ["map", [["k8semu", ghost]]]}},
                {"op": "mutate", "table": "Open_vSwitch", "where": [],
                 "mutations": [["bridges", "insert", ["set", [["named-uuid", "ghost"]]]],
                               ["other_config", "insert", ["map", [["userspace-tso-enable", "true"]]]],
                               ["external_ids", "insert", ["map", [["k8semu-tso-previous", "(unset)"]]]]]}]
    subprocess.run(["ovsdb-tool", "transact", DB, json.dumps(transact)], check=True, capture_output=True)
    spec = tmp_path / "after.yaml"
    spec.write_text("apiVersion: k8semu.io/v1alpha1\nkind: Cluster\nmetadata: {name: after}\nspec:\n"
                    "  nodes: [{name: node-a}]\n")
    try:
        done = k8semu("up", str(spec), "--detach")
        assert "bridges of runs that never ended (cluster ghost" in done.stdout, done.stdout
        cluster = Cluster(str(spec))
        try:
            assert cluster.client.status()["slot"] == 1
        finally:
            cluster.down()
        assert "k8s0-br0" in [name for name in db_select("Bridge", "name")]  # down leaves another run's alone
        cleaned = k8semu("cleanup").stdout
        assert "removed Open vSwitch bridge k8s0-br0 of a run that never ended (k8semu:ghost:0000ffff)" in cleaned
        assert "restored to (unset)" in cleaned, cleaned
        assert not ovs_up() and not Path("/sys/class/net/k8s0-br0").exists()
        assert "k8s0-br0" not in db_select("Bridge", "name")
        config = db_select("Open_vSwitch", "other_config")[0]
        ids = db_select("Open_vSwitch", "external_ids")[0]
        assert "userspace-tso-enable" not in json.dumps(config) and "k8semu" not in json.dumps(ids)
        assert k8semu("cleanup").stdout.strip() == "nothing to clean up"
    finally:
        k8semu("cleanup", check=False)


def test_ovs_settings_are_restored_and_nothing_is_left_after_down() -> None:
    before = snapshot()
    was_running = ovs_up()
    cluster = Cluster("topologies/services.yaml").up()
    try:
        # IPv6: nothing of the emulation has an IPv6 address, in the root namespace or outside it
        addrs = subprocess.run(["ip", "-6", "-o", "addr"], capture_output=True, text=True).stdout
        assert not [line for line in addrs.splitlines() if " k8s" in line]
        for host in ("outside", "worker-1"):
            assert subprocess.run(["ip", "-n", cluster.netns(host), "-6", "-o", "addr"], capture_output=True,
                                  text=True).stdout.strip() == ""
        # a setsid child and a nohup job try to outlive their pod
        web = cluster.get("pods", "default", "app=web")[0]["metadata"]["name"]
        cluster.exec(web, "sh", "-c", "setsid sleep 1000 >/dev/null 2>&1 & nohup sleep 1001 >/dev/null 2>&1 &")
        assert subprocess.run(["pgrep", "-f", "sleep 100[01]"], capture_output=True).returncode == 0
    finally:
        cluster.down()
    assert leftovers(before) == {}
    assert subprocess.run(["pgrep", "-f", "sleep 100[01]"], capture_output=True).returncode == 1
    assert ovs_up() == was_running
    if not was_running:
        done = subprocess.run(["ovsdb-tool", "query", "/etc/openvswitch/conf.db",
                               '["Open_vSwitch",{"op":"select","table":"Open_vSwitch","where":[],"columns":["other_config"]}]'],
                              capture_output=True, text=True)
        assert "userspace-tso-enable" not in done.stdout
        assert "k8semu" not in json.dumps(db_select("Open_vSwitch", "external_ids"))
    assert not list(Path("/sys/fs/cgroup").glob("*/k8semu"))


def test_an_underlay_on_the_machine_lan_is_refused(tmp_path: Path) -> None:
    route = subprocess.run(["ip", "-4", "-j", "route", "show", "scope", "link"], capture_output=True, text=True).stdout
    lan = next((r["dst"] for r in json.loads(route) if "/" in r.get("dst", "")), None)
    if lan is None:
        pytest.skip("this machine has no directly connected IPv4 network")
    spec = tmp_path / "lan.yaml"
    spec.write_text("apiVersion: k8semu.io/v1alpha1\nkind: Cluster\nmetadata: {name: lan}\nspec:\n"
                    f"  nodes: [{{name: n}}]\n  network: {{underlay: {{subnet: {lan}}}}}\n")
    before = snapshot()
    done = k8semu("up", str(spec), "--detach", check=False)
    assert done.returncode == 1 and f"spec.network.underlay.subnet {lan} overlaps this machine's" in done.stderr
    assert leftovers(before) == {}


# -- the CLI tells the truth ------------------------------------------------------------------
def test_sigterm_to_a_foreground_up_tears_down() -> None:
    before = snapshot()
    shell = subprocess.Popen([str(ROOT / ".venv" / "bin" / "k8semu"), "up", "topologies/default.yaml"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        poll(lambda: "running and ready" in k8semu("--cluster", "default", "status", check=False).stdout, timeout=60,
             what="the cluster to be up")
        shell.send_signal(signal.SIGTERM)
        out, err = shell.communicate(timeout=60)
    finally:
        if shell.poll() is None:  # failed: take the cluster down so that the next test starts clean
            shell.kill()
            k8semu("cleanup", "--cluster", "default", check=False)
    assert "cluster 'default' is down" in out, (out, err)
    assert leftovers(before) == {}


def test_status_after_the_manager_died_says_to_clean_up() -> None:
    cluster = Cluster("topologies/default.yaml").up()
    pid = cluster.client.status()["pid"]
    os.kill(pid, signal.SIGKILL)
    poll(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
         what="the manager to die")
    status = k8semu("status", check=False)
    assert status.returncode == 1
    assert "manager" in status.stderr and "is not running" in status.stderr and "k8semu cleanup --cluster default" \
        in status.stderr
    assert "removed" in k8semu("cleanup").stdout

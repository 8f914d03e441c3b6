"""``k8semu ui`` in a real browser (headless Chromium through chromedriver, Debian's): the page
draws the cluster, follows it as pods come, draws a trace's path, turns a reachability cell red
once a deny policy is enforced, and refuses a request without its token. Screenshots of each
case are kept in the test's temporary directory."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.cluster import ROOT, Cluster, k8semu, module_cluster, poll

netpol = module_cluster("topologies/netpol.yaml")


@pytest.fixture(scope="module")
def url(netpol: Cluster):
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "ui"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
        assert found, line + proc.stderr.read() if proc.poll() is not None else line
        yield found.group(1)
    finally:
        proc.terminate()  # by PID (SIGTERM): the server and its poller end
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(url: str):
    """Headless Chromium; its profile and the temporary folders it makes go in a folder of the
    test's own, removed afterwards (Chromium leaves an empty one in $TMPDIR per run otherwise)."""
    with tempfile.TemporaryDirectory(prefix="k8semu-ui-test-") as home:
        options = Options()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                    "--disable-dev-shm-usage", f"--user-data-dir={home}/profile"):
            options.add_argument(arg)
        options.binary_location = "/usr/bin/chromium"
        service = Service("/usr/bin/chromedriver", env={**os.environ, "TMPDIR": home})
        driver = webdriver.Chrome(service=service, options=options)
        try:
            driver.get(url)
            yield driver
        finally:
            driver.quit()


def attr(driver, element: str, name: str) -> str:
    return driver.find_element(By.ID, element).get_attribute(name) or ""


def js(driver, script: str, *args):
    """Read the page in one step: the picture, the counters and the matrix are replaced as events
    arrive, so an element found in one call may be gone (stale) by the next."""
    return driver.execute_script(script, *args)


def text_of(driver, selector: str) -> str | None:
    return js(driver, "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", selector)


def ids_of(driver, selector: str) -> set[str]:
    return set(js(driver, "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.id);", selector))


def settle() -> None:
    poll(lambda: "in sync" in k8semu("status").stdout, timeout=10, what="every switch to confirm the view")


def test_the_page_draws_every_pod_and_node(netpol: Cluster, browser, tmp_path) -> None:
    pods = [p for p in netpol.get("pods") if p["metadata"]["namespace"] != "kube-system"]  # as the page counts
    poll(lambda: attr(browser, "summary", "data-ready") == str(len(pods)), timeout=10, what="every pod drawn ready")
    drawn = ids_of(browser, "#picture g[id]")
    assert {f"pod:{p['metadata']['namespace']}:{p['metadata']['name']}" for p in pods} <= drawn
    assert {"node:control-plane", "node:worker-1", "node:worker-2"} <= drawn
    assert "3 nodes" in browser.find_element(By.ID, "summary").text
    browser.save_screenshot(str(tmp_path / "cluster.png"))


def test_a_new_pod_shows_once_it_is_ready(netpol: Cluster, browser) -> None:
    before = int(attr(browser, "summary", "data-ready"))
    netpol.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: newcomer, namespace: x}\n"
                 "spec: {containers: [{name: c, image: busybox}]}\n")
    try:
        poll(lambda: attr(browser, "summary", "data-ready") == str(before + 1), timeout=10, what="the new pod drawn")
        assert "pod:x:newcomer" in ids_of(browser, "#picture g[id]")
    finally:
        k8semu("delete", "pod", "newcomer", "-n", "x", "--grace-period", "0", "--force")
    poll(lambda: "pod:x:newcomer" not in ids_of(browser, "#picture g[id]"), timeout=10, what="the pod gone from the page")


def test_a_trace_is_drawn_on_the_picture(netpol: Cluster, browser, tmp_path) -> None:
    for field, value in (("trace-source", "b"), ("trace-destination", "pod/a"), ("trace-port", "80")):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    namespace = browser.find_element(By.ID, "trace-namespace")
    namespace.clear()
    namespace.send_keys("x")
    browser.find_element(By.ID, "trace-go").click()
    poll(lambda: attr(browser, "trace-verdict", "data-verdict"), timeout=10, what="the trace's verdict")
    assert attr(browser, "trace-verdict", "data-verdict") == "delivered"
    on_path = ids_of(browser, ".on-path")
    assert {"pod:x:a", "pod:x:b"} <= on_path and any(i.startswith("node:") for i in on_path)
    assert js(browser, "const h = document.querySelectorAll('#trace-hops li'); return h[h.length - 1].className;") \
        == "deliver"
    browser.save_screenshot(str(tmp_path / "trace.png"))


def test_a_matrix_cell_turns_red_once_a_deny_policy_is_enforced(netpol: Cluster, browser, tmp_path) -> None:
    cell = '#matrix td.cell[data-source="x/b"][data-destination="x/a"]'

    def probe() -> str:
        js(browser, "document.getElementById('matrix').replaceChildren();")  # the next matrix is the new one
        box = browser.find_element(By.ID, "probe-namespaces")
        box.clear()
        box.send_keys("x")
        browser.find_element(By.ID, "probe-go").click()
        return poll(lambda: js(browser, "const e = document.querySelector(arguments[0]); return e && e.className;",
                               cell), timeout=30, what="the matrix")

    assert "allowed" in probe()
    netpol.apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\n"
                 "spec: {podSelector: {}}\n")
    try:
        settle()
        assert "denied" in probe()
        browser.save_screenshot(str(tmp_path / "matrix.png"))
    finally:
        k8semu("delete", "networkpolicy", "deny", "-n", "x")
        settle()


def test_the_table_counters_move_with_traffic(netpol: Cluster, browser) -> None:
    target = json.loads(k8semu("get", "pod", "a", "-n", "x", "-o", "json").stdout)
    cell = f'#counters td[data-node="{target["spec"]["nodeName"]}"][data-table="Classifier"]'  # the node it crosses
    first = int(poll(lambda: text_of(browser, cell), what="the counters"))
    netpol.exec("b", "nc", "-z", "-w", "1", target["status"]["podIP"], "80", namespace="x")
    poll(lambda: int(text_of(browser, cell) or 0) > first, timeout=10, what="the counter to move")


def test_without_the_token_or_from_another_host_name_the_server_refuses(url: str) -> None:
    bare = url.split("?")[0]
    for request in (urllib.request.Request(bare),
                    urllib.request.Request(url, headers={"Host": "evil.example:80"})):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 403
    with urllib.request.urlopen(url, timeout=5) as ok:
        assert ok.status == 200 and "k8semu" in ok.read().decode()

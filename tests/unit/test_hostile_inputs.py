"""The bad-input corpus (tests/fixtures/hostile: specs and manifests a hostile or careless author
could write, each with its one expected located error in expected.txt) and files that only
exist at run time (devices, FIFOs, symlinks out of the folder, oversized files). Everything is
refused with ``file:line:col: field: message``: never a traceback, never more than a bounded
amount of time and memory. Run in a child process with an address-space limit, so a regression
that allocates without bound fails the test instead of the machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"
ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 1 << 30  # bytes of address space for the child that reads everything
PEAK_LIMIT = 64 << 20  # bytes any one input may make the reader allocate

CHILD = r"""
import json, os, resource, sys, time, tracemalloc
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
sys.path.insert(0, {root!r})
from emulator.cluster.admit import admit_cluster
from emulator.errors import SpecError
os.chdir(sys.argv[1])
out = {{}}
for name in sys.argv[2:]:
    tracemalloc.start()
    started = time.monotonic()
    try:
        admit_cluster(name)
        result = "ACCEPTED"
    except SpecError as exc:
        result = str(exc).splitlines()[0]
    except BaseException as exc:
        result = "TRACEBACK " + type(exc).__name__ + ": " + str(exc)[:300]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out[name] = {{"error": result, "seconds": time.monotonic() - started, "peak": peak}}
print(json.dumps(out))
"""


def read_all(folder: Path, names: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD.format(limit=MEMORY_LIMIT, root=str(ROOT)), str(folder), *names],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def expectations() -> dict[str, str]:
    out = {}
    for line in (CORPUS / "expected.txt").read_text().splitlines():
        name, _, error = line.partition(": ")
        out[name] = error.replace("{corpus}", str(CORPUS))  # the checkout may be anywhere
    return out


def test_the_corpus_is_large_and_every_case_has_an_expectation() -> None:
    cases = sorted(p.name for p in CORPUS.glob("*.yaml"))
    assert len(cases) >= 100
    assert sorted(expectations()) == cases


def test_every_bad_input_is_refused_with_its_located_error_in_bounded_time_and_memory() -> None:
    expected = expectations()
    results = read_all(CORPUS, sorted(expected))
    wrong = []
    for name, want in expected.items():
        got = results[name]
        if got["error"] != want:
            wrong.append(f"{name}:\n  expected {want}\n  got      {got['error']}")
        if got["seconds"] > 5 or got["peak"] > PEAK_LIMIT:
            wrong.append(f"{name}: {got['seconds']:.2f}s, {got['peak'] >> 20} MiB")
    assert not wrong, "\n".join(wrong)
    for name, got in results.items():
        assert got["error"].startswith(name + ":"), got  # located: file:line:col first


def spec_naming(manifest: str) -> str:
    return ("apiVersion: k8semu.io/v1alpha1\nkind: Cluster\nmetadata: {name: h}\nspec:\n  nodes: [{name: n1}]\n"
            f"  manifests: [{manifest}]\n")


def test_special_files_and_escaping_symlinks_are_refused_unread(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "shadow.yaml").symlink_to("/etc/shadow")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    (tmp_path / "inside.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n")
    (tmp_path / "link-inside.yaml").symlink_to(tmp_path / "inside.yaml")
    (tmp_path / "big.yaml").write_text("# " + "x" * (3 * 1024 * 1024) + "\n")
    (tmp_path / "dir.yaml").mkdir()
    cases = {"fifo": "fifo.yaml", "shadow": "shadow.yaml", "zero": "zero.yaml", "big": "big.yaml", "dir": "dir.yaml",
             "ok": "link-inside.yaml"}
    for case, manifest in cases.items():
        (tmp_path / f"spec-{case}.yaml").write_text(spec_naming(manifest))
    results = read_all(tmp_path, [f"spec-{c}.yaml" for c in cases])
    assert results["spec-fifo.yaml"]["error"].endswith("fifo.yaml: is a FIFO; k8semu reads only regular files")
    assert "is a symlink to /etc/shadow, outside its folder" in results["spec-shadow.yaml"]["error"] or \
        "leads to /etc/shadow" in results["spec-shadow.yaml"]["error"]
    assert "root:" not in json.dumps(results)  # nothing of /etc/shadow was read, let alone shown
    assert "/dev/zero" in results["spec-zero.yaml"]["error"]
    assert "the limit is 3145728" in results["spec-big.yaml"]["error"]
    assert "is a directory" in results["spec-dir.yaml"]["error"]
    assert results["spec-ok.yaml"]["error"] == "ACCEPTED"
    assert all(r["seconds"] < 5 for r in results.values())


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom", "/proc/self/environ"])
def test_a_device_or_proc_file_as_the_spec_is_refused_without_reading_it(path: str) -> None:
    done = subprocess.run([sys.executable, "-m", "emulator", "plan", path], capture_output=True, text=True, timeout=30,
                          cwd=ROOT)
    assert done.returncode == 3 and done.stderr.startswith(f"error: {path}")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) <= 3
    assert "PATH=" not in done.stderr  # nothing of the file's content is shown

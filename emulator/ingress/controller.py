"""The ingress-nginx-controller pod's process: real nginx, driven by Ingress objects.

    python -m emulator.ingress.controller -snapshot CLUSTER.json

It renders nginx.conf from the cluster snapshot (``render``), checks it with ``nginx -t``,
and reloads nginx gracefully (SIGHUP to the master: in-flight requests finish) when it changed.
A configuration that fails the check is logged and the last good one keeps serving; an Ingress
naming a missing Service is logged and left out while the others are served.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from emulator.images import acknowledge, identity
from emulator.ingress.render import render

POLL = 0.2
RELOAD_WAIT = 5.0  # at most this long for the old workers to go before a reload is acknowledged


def workers(master: int) -> set[int]:
    """The nginx master's worker processes (its children), or none where /proc cannot say."""
    try:
        return {int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()}
    except (OSError, ValueError):
        return set()


def reload(nginx: subprocess.Popen) -> float:
    """SIGHUP, then wait until every worker that served the old configuration has gone (nginx
    reloads asynchronously: old workers finish their requests and close their connections, new
    ones serve the new configuration). Why: the acknowledgement that follows is what "the data
    plane holds the change" means to the manager's waits, and a request right after a bare
    SIGHUP can still be answered from the old configuration (a 404 for an Ingress just added).
    Returns the seconds waited."""
    start, old = time.monotonic(), workers(nginx.pid)
    nginx.send_signal(signal.SIGHUP)
    while old & workers(nginx.pid) and time.monotonic() - start < RELOAD_WAIT and nginx.poll() is None:
        time.sleep(0.01)
    return time.monotonic() - start


def fake_certificate(certs: Path) -> None:
    """ingress-nginx's "Kubernetes Ingress Controller Fake Certificate", for unknown HTTPS names."""
    certs.mkdir(parents=True, exist_ok=True)
    if not (certs / "default.crt").exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
                        "-subj", "/O=Acme Co/CN=Kubernetes Ingress Controller Fake Certificate",
                        "-keyout", str(certs / "default.key"), "-out", str(certs / "default.crt")],
                       capture_output=True, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nginx-ingress-controller")
    parser.add_argument("-snapshot", required=True)
    args, _ = parser.parse_known_args(argv)
    directory = identity()["container_dir"] or os.getcwd()
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    conf = Path(directory, "nginx.conf")
    fake_certificate(Path(directory, "certs"))
    snapshot, mtime, current, problems, nginx = Path(args.snapshot), 0.0, None, None, None
    while True:
        try:
            if snapshot.stat().st_mtime != mtime:
                mtime = snapshot.stat().st_mtime
                data = json.loads(snapshot.read_text())
                rendered = render(data, directory)
                text = rendered.conf
                if rendered.problems != problems:
                    problems = rendered.problems
                    for p in problems:
                        print(f"[WARN] {p}", flush=True)
                for name, content in rendered.files.items():
                    target = Path(directory, name)
                    if not target.exists() or target.read_text() != content:
                        target.write_text(content)
                        target.chmod(0o600)
                if text != current:
                    candidate = Path(directory, "nginx.conf.new")
                    candidate.write_text(text)
                    check = subprocess.run(["nginx", "-t", "-q", "-c", str(candidate), "-p", directory],
                                           capture_output=True, text=True)
                    if check.returncode != 0:
                        print(f"[ERROR] new configuration rejected, keeping the last good one: {check.stderr.strip()}",
                              flush=True)
                    else:
                        candidate.replace(conf)
                        current = text
                        waited = 0.0
                        if nginx is None:
                            nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", directory])
                        else:
                            waited = reload(nginx)
                        print(f"[INFO] configuration applied{f' (old workers gone in {waited:.2f}s)' if waited else ''}",
                              flush=True)
                acknowledge(data.get("generation"))  # nginx serves this snapshot (or kept the last good one)
        except (OSError, ValueError) as exc:
            print(f"[WARN] cannot read the cluster snapshot: {exc}", flush=True)
        if nginx is not None and nginx.poll() is not None:
            return nginx.returncode or 1
        time.sleep(POLL)


if __name__ == "__main__":
    sys.exit(main())

"""Connection attempts from inside a pod, for ``k8semu probe``: one process per source pod
tries every target at once (threads) and prints a JSON list of booleans in target order.

TCP: allowed if the connection opens. UDP: allowed if the server's reply comes back (the probe
servers answer every datagram), since UDP has no handshake. Every attempt is bounded by the
timeout given, so a dropped packet shows as blocked, as in the Kubernetes e2e netpol probes.
"""
from __future__ import annotations

import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor


def attempt(ip: str, port: int, proto: str, timeout: float) -> bool:
    """TCP and SCTP: the association/connection opens; UDP: the reply comes back."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    number = socket.IPPROTO_SCTP if proto == "sctp" else 0
    with socket.socket(socket.AF_INET, kind, number) as s:
        s.settimeout(timeout)
        try:
            if proto in ("tcp", "sctp"):
                s.connect((ip, port))
                return True
            s.sendto(b"probe", (ip, port))
            s.recvfrom(512)
            return True
        except OSError:
            return False


def main(argv: list[str]) -> int:
    targets = json.loads(argv[0])
    timeout = float(argv[1]) if len(argv) > 1 else 1.0
    with ThreadPoolExecutor(max_workers=min(64, len(targets) or 1)) as pool:
        results = list(pool.map(lambda t: attempt(t[0], int(t[1]), t[2], timeout), targets))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""HTTP echo servers: the generic echo (request, headers, pod, client address as JSON) and
hashicorp/http-echo (``-text`` on ``-listen``), on the standard library's threading server.

Written here rather than taken from PyPI because it must run with nothing but the interpreter
inside any pod; every request is logged to stdout with the client address, as nginx does.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from emulator.images import identity


def make_handler(text: str | None) -> type[BaseHTTPRequestHandler]:
    who = identity()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "k8semu-echo"

        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body_in = self.rfile.read(length) if length else b""
            if text is not None:
                body = (text + "\n").encode()
                ctype = "text/plain"
            else:
                body = json.dumps({
                    "pod": who["pod_name"], "namespace": who["pod_namespace"],
                    "podIP": who["pod_ip"], "node": who["node_name"],
                    "hostname": socket.gethostname(), "client": self.client_address[0],
                    "method": self.command, "path": self.path, "headers": dict(self.headers),
                    "body": body_in.decode(errors="replace")}, indent=1).encode() + b"\n"
                ctype = "application/json"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _reply

        def log_message(self, fmt: str, *args) -> None:
            sys.stdout.write(f"{self.client_address[0]} - [{self.log_date_time_string()}] {fmt % args}\n")
            sys.stdout.flush()

    return Handler


def udp_echo(port: int) -> None:
    """Echo each datagram back as ``<pod>: <data>`` so a client sees which endpoint answered."""
    name = identity()["pod_name"].encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        data, peer = sock.recvfrom(65535)
        print(f"{peer[0]} - udp {len(data)} bytes", flush=True)
        sock.sendto(name + b": " + data, peer)


def serve_names(spec: str) -> None:
    """``--serve tcp:80,udp:81``: answer each connection or datagram with the pod's name (the
    Kubernetes netpol e2e servers do the same with agnhost serve-hostname)."""
    import threading
    name = identity()["pod_name"].encode()

    def tcp(port: int) -> None:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen(128)

        def talk(conn: socket.socket) -> None:
            # reply, then drain until the client closes: closing with unread input would
            # send a RST that can discard the reply before the client reads it
            try:
                conn.sendall(name + b"\n")
                conn.settimeout(30)
                while conn.recv(4096):
                    pass
            except OSError:
                pass
            conn.close()

        while True:
            conn, _ = srv.accept()
            threading.Thread(target=talk, args=(conn,), daemon=True).start()

    def udp(port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", port))
        while True:
            _, peer = sock.recvfrom(512)
            sock.sendto(name + b"\n", peer)

    threads = []
    for item in spec.split(","):
        proto, port = item.split(":")
        threads.append(threading.Thread(target=tcp if proto == "tcp" else udp, args=(int(port),), daemon=True))
        threads[-1].start()
    print(f"serving {spec}", flush=True)
    for t in threads:
        t.join()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="echo", prefix_chars="-")
    parser.add_argument("--http-echo", action="store_true")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "80")))
    parser.add_argument("-text", "--text", default=None)
    parser.add_argument("-listen", "--listen", default=None)
    parser.add_argument("--serve", default="", help="tcp:PORT,udp:PORT,...: answer with the pod name")
    parser.add_argument("--udp", type=int, default=int(os.environ.get("UDP_PORT", "0")),
                        help="also echo UDP datagrams on this port, prefixed with the pod name")
    return parser.parse_known_args(argv)[0]


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.serve:
        serve_names(args.serve)
        return 0
    port = args.port
    text = args.text
    if args.http_echo:
        port = int((args.listen or ":5678").rsplit(":", 1)[1])
        text = text if text is not None else "hello-world"
    if args.udp:
        import threading
        threading.Thread(target=udp_echo, args=(args.udp,), daemon=True).start()
    server = ThreadingHTTPServer(("0.0.0.0", port), make_handler(text))
    server.daemon_threads = True
    print(f"echo server listening on :{port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

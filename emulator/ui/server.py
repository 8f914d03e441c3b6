"""``k8semu ui``: the cluster as a live picture in a browser, on 127.0.0.1 only.

A client of the API like every verb (the typed ``Client``): a poller thread asks four times a
second whether the objects changed (each kind's list resourceVersion, without the objects), and
only then takes a snapshot of them and, when what the picture shows changed, draws it again with
Graphviz (``client.diagram``) and pushes it to every open page by Server-Sent Events; the
switches' table counters are pushed once a second. The page asks for traces (``k8semu trace``)
and for the reachability matrix (``k8semu probe``) with POSTs. aiohttp serves it (already the
API's server library); the page is plain HTML and JavaScript shipped in the package, nothing
fetched from anywhere.

Access: the URL printed at start carries a random token; the first request with it sets an
HttpOnly, SameSite=Strict cookie, and every request without the token or the cookie is refused
(403), as is one whose Host is not this server's loopback address (DNS rebinding). The page can
send packets (a live trace, a probe): another local user must not be able to.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from emulator.client import diagram, probe
from emulator.client.client import Client
from emulator.errors import K8semuError

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "k8semu_ui"
POLL = 0.25  # seconds between snapshots: a pod turning Ready shows within a second
COUNTERS = 1.0


class Ui:
    """The server, its token, and the latest picture (sent to a page as soon as it connects)."""

    def __init__(self, client: Client, port: int = 0, system: bool = False, address: str = "127.0.0.1") -> None:
        self.client, self.port, self.system, self.address = client, port, system, address
        self.token = secrets.token_urlsafe(24)
        self.queues: set[asyncio.Queue] = set()
        self.latest: dict[str, dict] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop = threading.Event()
        self.runner: web.AppRunner | None = None

    # -- access -------------------------------------------------------------------------------
    @web.middleware
    async def guard(self, request: web.Request, handler) -> web.StreamResponse:
        if request.host not in (f"127.0.0.1:{self.port}", f"localhost:{self.port}"):
            raise web.HTTPForbidden(text="k8semu ui: wrong Host")
        given = request.query.get("token") or request.cookies.get(COOKIE) or request.headers.get("X-K8semu-Token", "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise web.HTTPForbidden(text="k8semu ui: open the URL k8semu ui printed (it carries the token)")
        response = await handler(request)
        if request.query.get("token"):
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
        return response

    # -- pages ----------------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def script(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "app.js", headers={"Cache-Control": "no-store"})

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        queue: asyncio.Queue = asyncio.Queue(maxsize=64)
        self.queues.add(queue)
        try:
            for kind, data in list(self.latest.items()):
                await response.write(_event(kind, data))
            while True:
                kind, data = await queue.get()
                if kind is None:  # the server is closing
                    break
                await response.write(_event(kind, data))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.queues.discard(queue)
        return response

    async def trace(self, request: web.Request) -> web.Response:
        body = await _body(request)
        port = body.get("port")
        args = (str(body.get("source", "")), str(body.get("destination", "")), str(body.get("namespace") or "default"),
                str(body.get("protocol") or ""), int(port) if str(port or "").isdigit() else None, "",
                bool(body.get("live")))
        return await self._answer(lambda: self.client.trace(*args))

    async def probe(self, request: web.Request) -> web.Response:
        body = await _body(request)
        namespaces = [n for n in str(body.get("namespaces") or "").replace(" ", "").split(",") if n] or None
        ports = [int(p) for p in str(body.get("ports") or "80").split(",") if p.strip().isdigit()] or [80]

        def run() -> dict:
            tables = probe.probe(self.client, namespaces, ports, ["tcp"])
            self._publish("matrix", {"tables": tables})
            return {"tables": tables}
        return await self._answer(run)

    async def _answer(self, fn) -> web.Response:
        try:
            return web.json_response(await asyncio.get_running_loop().run_in_executor(None, fn))
        except K8semuError as exc:
            return web.json_response({"error": str(exc)}, status=400)

    # -- the poller -----------------------------------------------------------------------------
    def _publish(self, kind: str, data: dict) -> None:
        """Keep it as the latest of its kind and hand it to every page (from any thread)."""
        self.latest[kind] = data
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._fan_out, kind, data)

    def _fan_out(self, kind: str, data: dict) -> None:
        for queue in list(self.queues):
            if queue.full():
                queue.get_nowait()  # a slow page skips a picture rather than growing a queue
            queue.put_nowait((kind, data))

    def poll(self) -> None:
        """Snapshot, and redraw when the picture's content changed; counters every second."""
        seen, counted, failing, version = "", 0.0, False, None
        while not self.stop.is_set():
            try:
                now = diagram.Snapshot.version(self.client)
                if now != version:  # listing 1,000 pods four times a second was most of an idle UI's CPU
                    snap = diagram.Snapshot.take(self.client)
                    version = now
                    text = diagram.dot(snap, self.system)
                    digest = hashlib.sha256(text.encode()).hexdigest()
                    if digest != seen:
                        seen = digest
                        self._publish("picture", {"svg": diagram.render(text, "svg").decode(), "at": time.time(),
                                                  **summary(snap, self.system)})
                if time.monotonic() - counted >= COUNTERS:
                    counted = time.monotonic()
                    self._publish("counters", self.client.counters())
                if failing:
                    failing = False
                    self._publish("problem", {"error": ""})
            except K8semuError as exc:
                failing = True
                self._publish("problem", {"error": str(exc)})
            self.stop.wait(POLL)

    # -- running ----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard])
        app.router.add_get("/", self.index)
        app.router.add_get("/app.js", self.script)
        app.router.add_get("/events", self.events)
        app.router.add_post("/api/trace", self.trace)
        app.router.add_post("/api/probe", self.probe)
        return app

    async def start(self) -> str:
        """Listen on 127.0.0.1 (port 0: any free one); the URL to open, with its token."""
        self.loop = asyncio.get_running_loop()
        self.runner = web.AppRunner(self.app(), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.address, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        threading.Thread(target=self.poll, name="ui poller", daemon=True).start()
        return f"http://127.0.0.1:{self.port}/?token={self.token}"  # in a container: the published port

    async def close(self) -> None:
        """End every open event stream (a page's stream would otherwise hold the shutdown until
        aiohttp's timeout), then the server."""
        self.stop.set()
        for queue in list(self.queues):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait((None, None))
        await asyncio.sleep(0)
        if self.runner is not None:
            await self.runner.cleanup()


def summary(snap: diagram.Snapshot, system: bool) -> dict:
    """Counts the page shows beside the picture (and tests read)."""
    pods = [p for p in snap.objects.get("Pod", []) if system or p["metadata"]["namespace"] != "kube-system"]
    ready = [p for p in pods if diagram.pod_colour(p) == diagram.GREEN]
    return {"pods": len(pods), "ready": len(ready), "nodes": len(snap.objects.get("Node", [])),
            "services": len(snap.objects.get("Service", []))}


def _event(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


async def _body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="a JSON object is required") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="a JSON object is required")
    return body


CONTAINER_MARKS = ("/run/.containerenv", "/.dockerenv")  # podman's, docker's


def check_address(address: str) -> str:
    """127.0.0.1 always; any other address only inside a container, whose network namespace is
    its own (the host reaches it through a port published on its loopback, as the README's
    container section does).

    Raises:
        K8semuError: another address outside a container.
    """
    if address in ("127.0.0.1", "localhost"):
        return "127.0.0.1"
    if not any(os.path.exists(mark) for mark in CONTAINER_MARKS):
        raise K8semuError(f"ui --address {address}: only 127.0.0.1 here (another address is for inside a "
                          "container, reached through a port published on the host's loopback)")
    return address


def serve(client: Client, port: int, system: bool, announce, address: str = "127.0.0.1") -> None:
    """Run until Ctrl-C or SIGTERM; ``announce(url)`` once listening. Both signals get a handler
    of the loop's own: a process started in the background by a shell inherits SIGINT ignored,
    and must still stop when asked."""
    ui = Ui(client, port, system, check_address(address))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        announce(await ui.start())
        try:
            await stop.wait()
        finally:
            await ui.close()
    asyncio.run(main())

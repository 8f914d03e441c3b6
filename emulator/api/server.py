"""The HTTPS server kubectl and client libraries talk to, run on its own thread and event loop
inside the manager process.

Every request is authenticated by a client certificate the cluster's CA signed (kubectl's
admin context) or a ServiceAccount token, except the health and version endpoints, which
kube-apiserver also serves to anyone, and then authorized by RBAC (api/authz.py). Requests run
on the aiohttp loop; each call into the cluster goes through the manager's typed requests
(``Backend``) on a worker thread, so a slow client never holds the manager's lock and the
reconcile loop never waits on a client. The server listens on 127.0.0.1 only, on a free
port, as kind's API server does.
"""
from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
from dataclasses import replace
from typing import Sequence
from urllib.parse import parse_qs

from aiohttp import web

from emulator import __version__
from emulator.api import authz, logs, openapi, ops, pki, podexec, portforward, resources, reviews, status, tables
from emulator.api.authz import User
from emulator.api.backend import Backend
from emulator.api.handlers import Handlers, Target
from emulator.api.status import ApiError
from emulator.api.watch import Gone, Watcher
from emulator.model import satoken
from emulator.model.rbac import Attributes

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's limit on a request body
PUBLIC = ("/healthz", "/livez", "/readyz", "/version")
WATCH_QUEUE = 10000  # events a watcher may fall behind before its watch is ended
WATCH_TIMEOUT = 1800.0  # longest watch (kube-apiserver: --min-request-timeout, randomized up to 2x)
BOOKMARK_EVERY = 5.0
POD_STREAMS = ("log", "exec", "attach", "portforward")  # pod subresources served here, not by the handlers
STOP_WAIT = 2.0  # seconds open requests get when the cluster goes down
USER = web.RequestKey("user", User)  # who a request acts as (authenticated, then impersonated)


def version_info(kube_version: str) -> dict:
    major, minor = kube_version.lstrip("v").split(".")[:2]
    return {"major": major, "minor": minor, "gitVersion": kube_version, "gitCommit": f"k8semu-{__version__}",
            "gitTreeState": "clean", "buildDate": "", "goVersion": "", "compiler": "k8semu",
            "platform": "linux/amd64"}


def error_response(exc: ApiError) -> web.Response:
    return web.json_response(exc.body(), status=exc.code)


AGGREGATED = {"v2": "apidiscovery.k8s.io/v2", "v2beta1": "apidiscovery.k8s.io/v2beta1"}


def _aggregated_version(accept: str) -> str:
    """The apidiscovery apiVersion the client asks for at /api and /apis in its Accept header
    (client-go sends v2, then v2beta1, then plain JSON), or "" for the per-version documents.
    Only JSON is offered: the protobuf forms are left to the plain JSON fallback the client lists."""
    for entry in accept.split(","):
        kind, _, params = entry.strip().partition(";")
        fields = dict(p.strip().partition("=")[::2] for p in params.split(";") if "=" in p)
        if kind.strip() == "application/json" and fields.get("g") == "apidiscovery.k8s.io" \
                and fields.get("as") == "APIGroupDiscoveryList" and fields.get("v") in AGGREGATED:
            return AGGREGATED[fields["v"]]
    return ""


def _aggregated_response(doc: dict) -> web.Response:
    version = doc["apiVersion"].rpartition("/")[2]
    return web.Response(body=json.dumps(doc).encode(), headers={
        "Content-Type": f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList",
        "Vary": "Accept"})


class ApiServer:
    """The API of one cluster: ``start()`` returns the port it listens on."""

    def __init__(self, backend: Backend, paths: pki.Paths, kube_version: str, sa_key: bytes = b"",
                 extra: Sequence[socket.socket] = ()) -> None:
        self.handlers = Handlers(backend, backend.network_plugin())
        self.cni = self.handlers.cni  # which data plane's resources are served (resources.served)
        self.paths = paths
        self.kube_version = kube_version
        self.sa_key = sa_key  # ServiceAccount tokens are verified with it (empty: none accepted)
        self.extra = list(extra)  # sockets made elsewhere (in the control-plane node's namespace)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="api", daemon=True)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self._started = threading.Event()
        self.closing = False  # set by stop(): every stream ends
        self._error: BaseException | None = None

    def tls(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.paths.server_cert, self.paths.server_key)
        ctx.load_verify_locations(self.paths.ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # no certificate: 401 below (health stays public)
        return ctx

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._authenticate])
        app.router.add_get("/version", self._version)
        for path in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(path, self._ok)
        app.router.add_get("/api", self._api_versions)
        app.router.add_get("/apis", self._api_groups)
        app.router.add_get("/openapi/v3", self._openapi_root)
        app.router.add_get("/openapi/v3/{gv:.+}", self._openapi_gv)
        app.router.add_route("*", ops.PREFIX + "{op:.+}", self._op)
        app.router.add_route("*", "/api/{rest:.*}", self._resource)
        app.router.add_route("*", "/apis/{rest:.*}", self._resource)
        return app

    def start(self, timeout: float = 10) -> int:
        self.handlers.hub.start()
        self.thread.start()
        if not self._started.wait(timeout) or self._error:
            raise RuntimeError(f"the API server did not start: {self._error!r}")
        return self.port

    def stop(self) -> None:
        """End every stream (watches, log follows, execs end on ``closing``), close the
        listeners and connections within ``STOP_WAIT`` seconds, and never raise: the cluster's
        teardown runs after this whatever the clients do."""
        self.closing = True
        try:
            if self.runner is not None and self.loop.is_running():
                asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(STOP_WAIT + 2)
        except Exception as exc:  # noqa: BLE001 - reported; the teardown goes on
            print(f"[WARN] the API server did not stop cleanly: {exc!r}", flush=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.handlers.hub.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
            self.runner = web.AppRunner(self.app(), access_log=None, handle_signals=False,
                                        shutdown_timeout=STOP_WAIT)
            self.loop.run_until_complete(self.runner.setup())
            tls = self.tls()
            for listening in [sock, *self.extra]:
                site = web.SockSite(self.runner, listening, ssl_context=tls)
                self.loop.run_until_complete(site.start())
        except BaseException as exc:  # noqa: B902 - reported by start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    # -- middleware and fixed endpoints ---------------------------------------------------
    def user(self, request: web.Request) -> User | None:
        """Who sent the request: a client certificate the cluster's CA signed, or a
        ServiceAccount token (``Authorization: Bearer``) whose ServiceAccount (and pod, for a
        pod's token) still exists; None for anyone else."""
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        found = pki.user_of(peer)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if found is None and scheme.lower() == "bearer" and self.sa_key:  # the scheme is case-insensitive
            found = satoken.verify(self.sa_key, token.strip())
            if found and not self.handlers.backend.token_holders_exist(*satoken.binding(token.strip())):
                found = None  # its ServiceAccount, or the pod it was bound to, is gone
        return User.authenticated(*found) if found else None

    @web.middleware
    async def _authenticate(self, request: web.Request, handler) -> web.StreamResponse:
        """401 without a user (but for the public paths), then the user the request acts as
        (impersonation) and whether RBAC lets it do what it asks (403 otherwise); off the event
        loop only when the RBAC snapshot must be read (system:masters needs none)."""
        try:
            if request.path not in PUBLIC:
                user = self.user(request)
                if user is None:
                    return error_response(status.unauthorized())
                impersonated = request.headers.get("Impersonate-User", "")
                groups = request.headers.getall("Impersonate-Group", [])
                extra = {k[len("Impersonate-Extra-"):].lower(): request.headers.getall(k)
                         for k in set(request.headers) if k.lower().startswith("impersonate-extra-")}
                loop = asyncio.get_running_loop()
                if impersonated or groups or extra:
                    user = await loop.run_in_executor(None, authz.impersonate, self.handlers.backend, user,
                                                      impersonated, groups, extra)
                request[USER] = user
                if not user.master and not request.path.startswith(ops.PREFIX):
                    await loop.run_in_executor(None, authz.authorize, self.handlers.backend,
                                               self._attributes(request, user))
            return await handler(request)
        except ApiError as exc:
            return error_response(exc)
        except web.HTTPRequestEntityTooLarge:
            return error_response(ApiError(413, "RequestEntityTooLarge",
                                           f"Request entity too large: limit is {MAX_BODY}"))
        except web.HTTPException:
            raise

    def _attributes(self, request: web.Request, user: User) -> list[Attributes]:
        """What the request asks, as the authorizer sees it: a resource (its route) or a path."""
        path = request.path
        if path.startswith(("/api/", "/apis/")):
            try:
                t = self.handlers.route(path)
            except ApiError:
                t = None
            if t is not None and not t.discovery:
                query = {k: v[-1] for k, v in parse_qs(request.query_string, keep_blank_values=True).items()}
                return authz.resource_attributes(user, request.method, t.group, t.resource.plural,
                                                 t.namespace or "", t.name or "", t.subresource or "", query)
        return [authz.path_attributes(user, request.method, path)]

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response(version_info(self.kube_version))

    async def _api_versions(self, request: web.Request) -> web.Response:
        aggregated = _aggregated_version(request.headers.get("Accept", ""))
        if aggregated:
            return _aggregated_response(resources.aggregated_discovery(True, aggregated, self.cni))
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]}, headers={"Vary": "Accept"})

    async def _api_groups(self, request: web.Request) -> web.Response:
        aggregated = _aggregated_version(request.headers.get("Accept", ""))
        if aggregated:
            return _aggregated_response(resources.aggregated_discovery(False, aggregated, self.cni))
        out = []
        for group, versions in resources.groups(self.cni).items():
            if not group:
                continue
            gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
            out.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": out}, headers={"Vary": "Accept"})

    async def _openapi_root(self, request: web.Request) -> web.Response:
        return web.json_response(openapi.root_document(self.cni))

    async def _openapi_gv(self, request: web.Request) -> web.Response:
        """A document asked for by its current hash may be cached for good (kube-apiserver sends
        the same headers); asked for without it, it must be revalidated."""
        served = openapi.served_document(request.match_info["gv"], self.cni)
        if served is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        body, digest = served
        cache = "public, immutable" if request.query.get("hash") == digest else "no-cache, private"
        return web.Response(body=body, content_type="application/json",
                            headers={"Cache-Control": cache, "Etag": f'"{digest}"'})

    async def _op(self, request: web.Request) -> web.Response:
        """One of k8semu's own endpoints (``ops.OPS``), run off the event loop. They control the
        emulator itself (down, the SDN controller, where a pod's processes are), so only the
        cluster's administrators (group system:masters, the admin certificate ``up`` makes) may
        call them: a pod's ServiceAccount token gets 403."""
        user = request[USER]
        if pki.ADMIN_GROUP not in user.groups:
            raise status.forbidden(f'User "{user.name}" cannot use k8semu\'s own endpoints '
                                   f"({ops.PREFIX}*): they are for the group {pki.ADMIN_GROUP}")
        query = {k: v[-1] for k, v in parse_qs(request.query_string, keep_blank_values=True).items()}
        body = await request.read() if request.method == "POST" else b""
        result = await asyncio.get_running_loop().run_in_executor(
            None, ops.serve, self.handlers.backend, request.match_info["op"], request.method, query, body)
        return web.json_response(result)

    # -- resources --------------------------------------------------------------------------
    async def _resource(self, request: web.Request) -> web.StreamResponse:
        query = {k: v[-1] for k, v in parse_qs(request.query_string, keep_blank_values=True).items()}
        target = replace(self.handlers.route(request.path), user=request[USER])
        if target.discovery:
            return web.json_response(self.handlers.discovery(target))
        if target.resource.group in resources.REVIEW_GROUPS or (
                target.resource.kind == "ServiceAccount" and target.subresource == "token"):
            return await self._review(request, target)
        if request.method == "GET" and query.get("watch") in ("1", "true") and not target.subresource:
            return await self._watch(request, target, query)
        if target.resource.kind == "Pod" and target.name and target.subresource in POD_STREAMS:
            def pod_info() -> dict:
                return self.handlers.backend.pod_info(target.name, target.namespace or "default")
            if target.subresource == "log" and request.method == "GET":
                return await logs.serve(request, pod_info, query)
            if target.subresource == "exec" and request.method in ("GET", "POST"):
                return await podexec.serve(request, pod_info)
            if target.subresource == "attach" and request.method in ("GET", "POST"):
                return await podexec.attach(request, pod_info)
            if target.subresource == "portforward" and request.method in ("GET", "POST"):
                return await portforward.serve(request, pod_info)
        body = await request.read() if request.method in ("POST", "PUT", "PATCH", "DELETE") else b""
        loop = asyncio.get_running_loop()
        result, code, warnings = await loop.run_in_executor(
            None, self.handlers.serve, request.method, target, query, request.headers, body)
        headers = {"Warning": ", ".join(f'299 - {json.dumps(w)}' for w in warnings)} if warnings else None
        return web.json_response(result, status=code, headers=headers)

    async def _review(self, request: web.Request, target: Target) -> web.Response:
        """A review (``kubectl auth can-i``, ``auth whoami``) or a ServiceAccount's token
        (``kubectl create token``): created, answered, not stored."""
        if request.method != "POST" or (target.name and not target.subresource):
            raise status.method_not_allowed(f"the server does not allow this method on the requested resource "
                                            f"({target.resource.plural})")
        body = self.handlers.decode(await request.read(), request.headers)
        loop = asyncio.get_running_loop()
        if target.subresource == "token":
            answer = await loop.run_in_executor(None, reviews.token_request, self.handlers.backend, self.sa_key,
                                                target.namespace or "default", target.name, body)
        else:
            answer = await loop.run_in_executor(None, reviews.answer, self.handlers.backend, request[USER],
                                                target.resource.kind, target.namespace or "", body)
        return web.json_response(answer, status=201)

    async def _watch(self, request: web.Request, target: Target, query: dict) -> web.StreamResponse:
        """A watch: one JSON event per line on a chunked response until the client goes, the
        timeout passes or the client falls too far behind (then it ends; the client relists)."""
        loop = asyncio.get_running_loop()
        select = self.handlers.selector(target, query)
        table = "as=Table" in request.headers.get("Accept", "")
        include = query.get("includeObject", "Metadata")
        kind = target.resource.kind
        queue: asyncio.Queue = asyncio.Queue()
        overflow = asyncio.Event()

        def put(events: list[dict]) -> None:  # on the loop
            for event in events:
                if queue.qsize() >= WATCH_QUEUE:
                    overflow.set()
                    return
                queue.put_nowait(event)

        watcher = Watcher(kind, select, lambda events: loop.call_soon_threadsafe(put, events))
        initial = query.get("sendInitialEvents") == "true"
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            start = await loop.run_in_executor(None, self.handlers.hub.watch, watcher,
                                               query.get("resourceVersion", ""), initial)
        except Gone as exc:
            expired = ApiError(410, "Expired", str(exc)).body()
            await response.write(json.dumps({"type": "ERROR", "object": expired}).encode() + b"\n")
            return response
        except ValueError:
            await response.write(json.dumps({"type": "ERROR", "object": status.bad_request(
                "invalid resourceVersion").body()}).encode() + b"\n")
            return response
        bookmarks = query.get("allowWatchBookmarks") == "true"
        deadline = loop.time() + min(float(query.get("timeoutSeconds") or WATCH_TIMEOUT), WATCH_TIMEOUT)
        try:
            if initial:
                await queue.put({"type": "BOOKMARK", "object": self._bookmark(target, start, initial_end=True)})
            quiet = 0.0
            while not overflow.is_set():
                left = deadline - loop.time()
                if left <= 0 or self.closing or request.transport is None or request.transport.is_closing():
                    break  # over, or the client is gone: the watcher goes with it
                try:
                    event = await asyncio.wait_for(queue.get(), min(left, 1.0))
                    quiet = 0.0
                except asyncio.TimeoutError:
                    quiet += 1.0
                    if bookmarks and quiet >= BOOKMARK_EVERY:
                        quiet = 0.0
                        event = {"type": "BOOKMARK",
                                 "object": self._bookmark(target, self.handlers.hub.current())}
                    else:
                        continue
                # with what else is queued: one chunk (a TLS record, a send) for a pass's events
                events = [event] + [queue.get_nowait() for _ in range(queue.qsize())]
                await response.write(b"".join(self._line(e, kind, include) if table else self._line(e)
                                              for e in events))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.handlers.hub.unwatch(watcher)
        return response

    @staticmethod
    def _line(event: dict, kind: str = "", include: str = "") -> bytes:
        """An event as one line of the watch stream, serialized once for all the watchers that
        share the event (each form is kept on it: the hub hands every watcher the same dict, and
        every watch runs on this one event loop)."""
        form = f"\0table/{include}" if kind else "\0json"
        line = event.get(form)
        if line is None:
            shown = event if not kind or event["type"] == "BOOKMARK" else {
                "type": event["type"], "object": tables.as_table(kind, [event["object"]], include)}
            line = json.dumps({"type": shown["type"], "object": shown["object"]}).encode() + b"\n"
            event[form] = line
        return line

    @staticmethod
    def _bookmark(target: Target, rv: str, initial_end: bool = False) -> dict:
        res = target.resource
        meta: dict = {"resourceVersion": rv}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": res.kind, "apiVersion": res.group_version, "metadata": meta}

"""The ``exec`` and ``attach`` subresources of pods over WebSocket, the streaming protocol
current kubectl uses (``v5.channel.k8s.io``, also v4): every binary message starts with its
channel, 0 stdin, 1 stdout, 2 stderr, 3 the final Status, 4 terminal resize; v5's channel 255
closes a stream.

exec: the command enters the pod as ``k8semu exec`` does (``enter.pod_target``). With ``tty`` it
gets a pseudo-terminal whose size follows the client's resize messages. When the client goes,
the process (and what it started in its process group) is killed and reaped, so nothing is left.

attach: the client is joined to the streams the shim keeps for a container started with stdin
or tty (``runtime.attach``) through that container's socket; leaving ends only the connection.
"""
from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
from pathlib import Path
from typing import Any, Callable

from aiohttp import WSMsgType, web

from emulator.api import logs, status
from emulator.api.enter import pod_target
from emulator.api.status import ApiError
from emulator.errors import K8semuError
from emulator.runtime import attach as shim_attach

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def exit_status(code: int, command: list[str]) -> dict:
    """The Status sent on channel 3: kubectl takes the exit code from its ExitCode cause."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: error executing command {command}, "
                       f"exit code {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def _require_websocket(request: web.Request, what: str) -> None:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise ApiError(400, "BadRequest", f"{what} is served over WebSocket (v5.channel.k8s.io); SPDY is not served")


async def serve(request: web.Request, pod_info: Callable[[], Any]) -> web.StreamResponse:
    command = request.query.getall("command", [])
    if not command:
        raise status.bad_request("you must specify at least one command for the container")
    _require_websocket(request, "exec")
    loop = asyncio.get_running_loop()
    pod = await logs.pod_record(pod_info)
    try:
        target = pod_target(pod, request.query.get("container") or None, command)
    except K8semuError as exc:
        raise ApiError(404, "NotFound", str(exc)) from None
    tty = request.query.get("tty") in ("1", "true")
    want_stdin = request.query.get("stdin") in ("1", "true")
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=1 << 20)
    await ws.prepare(request)
    env = dict(target.env or {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
    master = None
    if tty:
        env.setdefault("TERM", "xterm")
        master, slave = pty.openpty()
        proc = await asyncio.create_subprocess_exec(*target.threaded_argv(), stdin=slave, stdout=slave,
                                                    stderr=slave, env=env, start_new_session=True)
        os.close(slave)
    else:
        proc = await asyncio.create_subprocess_exec(
            *target.threaded_argv(), stdin=asyncio.subprocess.PIPE if want_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)

    async def pump(read: Callable, channel: int) -> None:
        while True:
            data = await read()
            if not data:
                return
            await ws.send_bytes(bytes([channel]) + data)

    pumps = []
    if master is not None:
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                    os.fdopen(master, "rb", buffering=0, closefd=False))

        async def read_tty() -> bytes:
            try:
                return await reader.read(65536)
            except OSError:  # EIO once the terminal's last writer is gone
                return b""
        pumps.append(asyncio.ensure_future(pump(read_tty, STDOUT)))
    else:
        pumps.append(asyncio.ensure_future(pump(lambda: proc.stdout.read(65536), STDOUT)))
        pumps.append(asyncio.ensure_future(pump(lambda: proc.stderr.read(65536), STDERR)))

    async def from_client() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            try:
                if channel == STDIN and data:
                    if master is not None:
                        os.write(master, data)
                    elif proc.stdin:
                        proc.stdin.write(data)
                        await proc.stdin.drain()
                elif channel == RESIZE and master is not None:
                    shim_attach.set_size(master, data)
                elif channel == CLOSE and data[:1] == bytes([STDIN]) and proc.stdin:
                    proc.stdin.close()
            except OSError:  # the command has exited: its last output and status still go to the client
                continue
        raise ConnectionResetError  # the client went away

    client = asyncio.ensure_future(from_client())
    try:
        waiter = asyncio.ensure_future(proc.wait())
        done, _ = await asyncio.wait({waiter, client}, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            await asyncio.wait(pumps, timeout=2)
            await ws.send_bytes(bytes([ERROR]) + json.dumps(exit_status(proc.returncode, command)).encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        client.cancel()
        for p in pumps:
            p.cancel()
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
        if master is not None:
            transport.close()
            os.close(master)
        await ws.close()
    return ws


async def attach(request: web.Request, pod_info: Callable[[], Any]) -> web.StreamResponse:
    """``kubectl attach`` and ``kubectl run -i/-t``: relay between the client and the shim's
    socket for the container's streams until either side ends."""
    _require_websocket(request, "attach")
    pod = await logs.pod_record(pod_info)
    name = request.query.get("container") or pod["containers"][0]
    if name not in pod["containers"]:
        raise status.bad_request(f"container {name} is not valid for pod {pod['name']}")
    if pod.get("finished"):
        raise status.bad_request(f"cannot attach to a container in a completed pod; current phase is {pod['finished']}")
    path = pod["details"][name].get("attach")
    if not path:
        return await _attach_output(request, pod_info, logs.log_file(pod, name))
    try:
        reader, writer = await asyncio.open_unix_connection(path)
    except OSError:
        raise status.bad_request(f"container {name} in pod {pod['name']} is not running") from None
    want_stdin = request.query.get("stdin") in ("1", "true")
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=1 << 20)
    await ws.prepare(request)

    async def from_shim() -> None:
        while True:
            header = await reader.readexactly(shim_attach.HEADER.size)
            channel, length = shim_attach.HEADER.unpack(header)
            data = await reader.readexactly(length)
            if channel == shim_attach.OUTPUT:
                await ws.send_bytes(bytes([STDOUT]) + data)

    async def from_client() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data or writer.is_closing():
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDIN and data and want_stdin:
                writer.write(shim_attach.frame(shim_attach.STDIN, data))
            elif channel == RESIZE:
                writer.write(shim_attach.frame(shim_attach.RESIZE, data))
            elif channel == CLOSE and data[:1] == bytes([STDIN]):
                writer.write(shim_attach.frame(shim_attach.CLOSE, b""))
            try:
                await writer.drain()
            except OSError:  # the container has exited and the shim closed its side: what it
                writer.close()  # wrote before still reaches the client (from_shim), then its end

    shim_side, client_side = asyncio.ensure_future(from_shim()), asyncio.ensure_future(from_client())
    try:
        done, _ = await asyncio.wait({shim_side, client_side}, return_when=asyncio.FIRST_COMPLETED)
        if shim_side in done and not ws.closed:  # the container's output ended: it has exited
            await ws.send_bytes(bytes([ERROR]) + json.dumps(exit_status(0, [])).encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        for task in (shim_side, client_side):
            task.cancel()
        writer.close()
        await ws.close()
    return ws


async def _attach_output(request: web.Request, pod_info: Callable[[], Any], log: Path) -> web.StreamResponse:
    """Attach to a container without stdin or tty: its output from now on, as the kubelet
    streams it (read from its log), until the client leaves or the pod is gone."""
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=1 << 20)
    await ws.prepare(request)

    async def drain_client() -> None:  # reading is how a close from the client is noticed
        async for _ in ws:
            pass

    async def output() -> None:
        async for data in logs.follow(request, log, log.stat().st_size if log.exists() else 0, pod_info):
            await ws.send_bytes(bytes([STDOUT]) + data)

    tasks = {asyncio.ensure_future(drain_client()), asyncio.ensure_future(output())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await ws.close()
    return ws

"""The ``log`` subresource of pods: ``kubectl logs [-f] [--tail N] [-c CONTAINER]``.

A container's output is the file the kubelet writes in the pod's directory (``<container>.log``,
what ``k8semu logs`` prints). Following reads what is appended, checking the file every
``FOLLOW_EVERY`` seconds as the kubelet's log reader falls back to doing, and ends when the
client goes or the pod is gone.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, AsyncIterator, BinaryIO, Callable

from aiohttp import web

from emulator.api import status
from emulator.api.status import ApiError
from emulator.errors import K8semuError
from emulator.model import naming

FOLLOW_EVERY = 0.1
CHUNK = 65536


async def pod_record(pod_info: Callable[[], Any]) -> dict:
    """The manager's ``pod`` record, fetched off the event loop, that every pod subresource
    (log, exec, attach, portforward) starts from; a pod that is not there is 404."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, pod_info)
    except K8semuError as exc:
        raise ApiError(404, "NotFound", str(exc)) from None


def log_file(pod: dict, container: str | None) -> Path:
    """The file of the container a log request names (the only one, if it names none).

    Raises:
        ApiError: no container named and several in the pod, or no such container (400).
    """
    names = pod["containers"]
    if not container:
        if len(names) != 1:
            raise status.bad_request(f"a container name must be specified for pod {pod['name']}, "
                                     f"choose one of: [{' '.join(names)}]")
        container = names[0]
    if container not in names:
        raise status.bad_request(f"container {container} is not valid for pod {pod['name']}")
    return Path(pod["dir"]) / naming.container_log(container)


def tail(data: bytes, lines: int) -> bytes:
    if lines < 0:
        return data
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:]) if lines else b""


async def serve(request: web.Request, pod_info: Callable[[], Any], query: dict) -> web.StreamResponse:
    """Answer a log request; ``pod_info`` returns the manager's ``pod`` record (or raises)."""
    pod = await pod_record(pod_info)
    path = log_file(pod, query.get("container"))
    if query.get("previous") == "true":  # the instance before this one, which is not followed: it ended
        previous = path.with_name(naming.container_log(path.stem, previous=True))
        if not previous.exists():
            raise status.bad_request(f'previous terminated container "{path.stem}" in pod "{pod["name"]}" not found')
        path, query = previous, {**query, "follow": "false"}
    try:
        lines = int(query.get("tailLines", "-1"))
        limit = int(query.get("limitBytes", "0"))
    except ValueError:
        raise status.bad_request("tailLines and limitBytes must be integers") from None
    log = _open(path)
    try:
        data = log.read() if log else b""
        offset = len(data)
        data = tail(data, lines)
        if limit > 0:
            data = data[:limit]
        if query.get("follow") != "true":
            return web.Response(body=data, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(data)
        async for more in follow(request, path, offset, pod_info, log):
            await response.write(more)
        return response
    finally:
        if log:
            log.close()


def _open(path: Path) -> BinaryIO | None:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def _replaced(path: Path, log: BinaryIO) -> bool:
    """The file at ``path`` is no longer the one open: the kubelet kept it as the previous
    instance's when the container restarted."""
    try:
        return os.stat(path).st_ino != os.fstat(log.fileno()).st_ino
    except FileNotFoundError:
        return True


async def follow(request: web.Request, path: Path, offset: int, pod_info: Callable[[], Any],
                 log: BinaryIO | None = None) -> AsyncIterator[bytes]:
    """What the container writes to its log after ``offset``, until the client goes, the pod
    does, the container restarts (this instance's output all sent: the kubelet's follow ends
    with the container), or it has run to completion and all its output is sent (``logs -f``;
    ``attach`` to a container without stdin or tty). Reads the file open at the start (``log``,
    else the one at ``path`` once there is one), so a restart loses none of its last output."""
    loop = asyncio.get_running_loop()
    checks = 0
    opened = None
    try:
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(FOLLOW_EVERY)
            if log is None:
                log = opened = _open(path)
            if log is not None:
                log.seek(offset)
                more = log.read(CHUNK)
                if more:
                    offset += len(more)
                    yield more
                    continue
                if _replaced(path, log):
                    return
            checks += 1
            if checks % 10 == 0:  # once a second: is the pod still there, still running?
                try:
                    pod = await loop.run_in_executor(None, pod_info)
                except K8semuError:
                    return
                if pod.get("finished") and (not path.exists() or path.stat().st_size <= offset):
                    return
    finally:
        if opened is not None:
            opened.close()

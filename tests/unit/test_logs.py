"""A container's logs per instance without a cluster: the kubelet keeps the ended instance's file
when the container restarts, ``kubectl logs --previous`` reads it (the kubelet's 400 without
one), and following ends with the instance it follows, none of its last output lost."""
from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import make_mocked_request

from emulator.api import logs
from emulator.api.status import ApiError
from emulator.runtime.kubelet import keep_previous_log


def test_a_restart_keeps_the_ended_instances_log_as_the_previous_one(tmp_path):
    keep_previous_log(tmp_path, "c")  # never ran: nothing to keep
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "c.log").write_text("run 1\n")
    keep_previous_log(tmp_path, "c")
    assert (tmp_path / "c.previous.log").read_text() == "run 1\n" and not (tmp_path / "c.log").exists()
    (tmp_path / "c.log").write_text("run 2\n")
    keep_previous_log(tmp_path, "c")  # only the last ended instance is kept, as the kubelet serves it
    assert (tmp_path / "c.previous.log").read_text() == "run 2\n"


def _serve(tmp_path, query: dict):
    pod = {"name": "web", "containers": ["c"], "dir": str(tmp_path)}
    request = make_mocked_request("GET", "/api/v1/namespaces/default/pods/web/log")
    return asyncio.run(logs.serve(request, lambda: pod, query))


def test_previous_reads_the_kept_instance_or_is_the_kubelets_bad_request(tmp_path):
    (tmp_path / "c.log").write_text("run 2\n")
    with pytest.raises(ApiError) as refused:
        _serve(tmp_path, {"previous": "true"})
    assert refused.value.code == 400
    assert str(refused.value) == 'previous terminated container "c" in pod "web" not found'
    (tmp_path / "c.previous.log").write_text("a\nrun 1\n")
    assert _serve(tmp_path, {}).body == b"run 2\n"
    assert _serve(tmp_path, {"previous": "true", "tailLines": "1"}).body == b"run 1\n"
    assert _serve(tmp_path, {"previous": "true", "follow": "true"}).body == b"a\nrun 1\n"  # ended: not followed


def test_following_ends_with_the_instance_and_sends_all_it_wrote(tmp_path):
    current = tmp_path / "c.log"
    current.write_bytes(b"start\n")
    request = make_mocked_request("GET", "/log", transport=SimpleNamespace(is_closing=lambda: False,
                                                                                  get_extra_info=lambda *_: None))

    async def run() -> list[bytes]:
        got: list[bytes] = []
        with open(current, "rb") as log:
            log.read()
            stream = logs.follow(request, current, len(b"start\n"), lambda: {"finished": False}, log)
            with open(current, "ab") as out:  # the last words, then the restart: kept, and a new file
                out.write(b"last words\n")
            os.replace(current, tmp_path / "c.previous.log")
            current.write_bytes(b"next instance\n")
            async for chunk in stream:
                got.append(chunk)
        return got

    assert asyncio.run(asyncio.wait_for(run(), 5)) == [b"last words\n"]

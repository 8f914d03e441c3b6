"""Images whose files the kubelet writes into the container's folder before it starts (what an
image's layers would hold), by the name in the catalogue's ``Image.files``."""
from __future__ import annotations

from typing import Callable

from emulator.images import nginx

# (who the pod is, the container's folder as it sees it, argv, its volumes' mountPaths) ->
# (files, folders, argv)
Maker = Callable[[dict[str, str], str, list[str], tuple[str, ...]], tuple[dict[str, str], list[str], list[str]]]

MAKERS: dict[str, Maker] = {"nginx": nginx.prepare}

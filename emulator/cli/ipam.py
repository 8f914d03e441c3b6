"""``k8semu ipam show``: Calico's IPAM as ``calicoctl ipam show`` prints it (``--show-blocks``:
each block with its affinity; ``--show-borrowed``: addresses a node took from another's block),
from the manager's ``ipam`` endpoint."""
from __future__ import annotations

from typing import TextIO

from emulator.cli.output import table
from emulator.client import Client


def _share(part: int, whole: int) -> str:
    return f"{part} ({part * 100 // whole if whole else 0}%)"


def show(client: Client, show_blocks: bool, show_borrowed: bool, out: TextIO) -> int:
    data = client.ipam()
    rows = []
    for pool in data["pools"]:
        rows.append(["IP Pool", pool["cidr"], "", str(pool["total"]), _share(pool["used"], pool["total"]),
                     _share(pool["total"] - pool["used"], pool["total"])])
        if show_blocks:
            for block in data["blocks"]:
                if block["pool"] == pool["name"]:
                    rows.append(["Block", block["cidr"], block["affinity"], str(block["total"]),
                                 _share(block["used"], block["total"]),
                                 _share(block["total"] - block["used"], block["total"])])
    out.write(table(["GROUPING", "CIDR", "AFFINITY", "IPS TOTAL", "IPS IN USE", "IPS FREE"], rows) + "\n")
    if show_borrowed:
        out.write("\n" + table(["IP", "BORROWING-NODE", "BLOCK", "BLOCK OWNER", "ALLOCATED-TO"],
                               [[b["ip"], b["node"], b["block"], f"host:{b['blockOwner']}", b["handle"]]
                                for b in data["borrowed"]]) + "\n")
    return 0

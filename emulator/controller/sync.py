"""What to send a switch so that it holds exactly the desired flows (pure)."""
from __future__ import annotations

from emulator.pipeline.flow import Flow


def diff(installed: dict[tuple, Flow], desired: list[Flow]) -> tuple[list[Flow], list[Flow]]:
    """Return (flows to add or replace, flows to delete strictly).

    An OFPFC_ADD with the same table, priority and match replaces a flow in place, so a changed
    action never opens a window in which packets meet no flow.
    """
    want = {f.key: f for f in desired}
    adds = []
    for k, f in want.items():
        old = installed.get(k)
        # memoized flows are the very objects installed last time: identity settles most of them
        if old is not f and (old is None or old != f or old.cookie != f.cookie):
            adds.append(f)
    deletes = [f for k, f in installed.items() if k not in want]
    return adds, deletes


def diff_groups(installed: dict[int, object], desired: list) -> tuple[list, list, list]:
    """(groups to add, to modify, to delete) by group id: adds in the order given (chained groups
    come before the group choosing among them), deletes with such parent groups first."""
    want = {g.group_id: g for g in desired}
    adds = [g for gid, g in want.items() if gid not in installed]
    mods = [g for gid, g in want.items() if gid in installed and installed[gid] is not g and installed[gid] != g]
    deletes = sorted((g for gid, g in installed.items() if gid not in want), key=lambda g: not g.weights)
    return adds, mods, deletes

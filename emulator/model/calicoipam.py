"""Calico's IPAM (libcalico-go's ``ipam`` package), for ``cni: calico``.

- An IP pool is split into blocks of ``blockSize`` (/26 by default). A node asking for an
  address first uses the blocks affine to it; when they are full it claims the lowest unclaimed
  block of a pool (affinity ``host:<node>``); when no block is left to claim it borrows an
  address from another node's block (the pool's ``strictAffinity`` is false, Calico's IPv4
  default), which is then routed on its own, as a /32 from the borrowing node.
- Within a block, the lowest free ordinal is handed out and a released ordinal goes to the end of
  the free list (libcalico-go's ``unallocated``), so an address is not reused at once. Every
  address of a block can be handed out: Calico reserves no network or broadcast address.
- A block left empty is released (the affinity and the block go) when its node still holds
  another affine block: a node keeps one block, as after a restart it would claim one again.
  (Calico's kube-controllers release empty blocks after a grace period; here at once, so the
  routes a student reads follow what is used.) A block of a deleted pool goes once it is empty.
- The pools an address comes from (``choose``): those a pod or its namespace names in the
  ``cni.projectcalico.org/ipv4pools`` annotation, else every enabled pool whose nodeSelector
  selects the node; then those allowing the use (pods: Workload, a node's VXLAN address:
  Tunnel). A disabled pool hands out nothing more, not even from its blocks already claimed.

Claiming the lowest block rather than libcalico-go's hostname-seeded random start keeps a
cluster's blocks, routes and golden files the same from run to run (docs/dataplanes.md says so).
Written here, not borrowed: libcalico-go is Go, and its datastore (CRDs with compare-and-swap) is
the cluster state's single thread here.
"""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Callable

from emulator.model import calicoselector

from emulator.model.calico import Pool
from emulator.model.ipam import AddressesExhausted


class PoolNotUsable(AddressesExhausted):
    """A pod asked for a pool (by name or CIDR) that does not exist or is disabled."""


@dataclass
class Block:
    """An IPAMBlock: its CIDR, its pool, the node it is affine to and its allocations."""
    cidr: str
    pool: str
    affinity: str  # node name ("host:<node>" in Calico's objects)
    allocations: dict[int, str] = field(default_factory=dict)  # ordinal -> handle (the pod's key)
    unallocated: list[int] = field(default_factory=list)
    claimed: float = field(default_factory=time.time)  # the IPAMBlock's and BlockAffinity's creation

    def __post_init__(self) -> None:
        if not self.unallocated and not self.allocations:
            self.unallocated = list(range(self.size))

    @property
    def size(self) -> int:
        return ipaddress.IPv4Network(self.cidr).num_addresses

    def address(self, ordinal: int) -> str:
        return str(ipaddress.IPv4Network(self.cidr).network_address + ordinal)

    def ordinal(self, ip: str) -> int:
        return int(ipaddress.IPv4Address(ip)) - int(ipaddress.IPv4Network(self.cidr).network_address)

    def contains(self, ip: str) -> bool:
        return ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(self.cidr)

    def take(self, handle: str) -> str | None:
        if not self.unallocated:
            return None
        ordinal = self.unallocated.pop(0)
        self.allocations[ordinal] = handle
        return self.address(ordinal)


@dataclass
class CalicoIPAM:
    """Every block of the cluster's pools, in the order they were claimed."""
    pools: tuple[Pool, ...]
    labels_of: Callable[[str], dict[str, str]] = lambda node: {}  # a node's labels, for the pools' nodeSelectors
    blocks: dict[str, Block] = field(default_factory=dict)  # cidr -> block
    used_on: dict[str, str] = field(default_factory=dict)  # ip -> the node it was handed to
    handles: dict[str, str] = field(default_factory=dict)  # handle -> its ip

    def affine(self, node: str) -> list[Block]:
        return [b for b in self.blocks.values() if b.affinity == node]

    def choose(self, node: str, requested: tuple[str, ...] = (), use: str = "Workload") -> list[Pool]:
        """The pools an address for ``use`` on ``node`` may come from: those ``requested`` (names
        or CIDRs, from the ``cni.projectcalico.org/ipv4pools`` annotation: their nodeSelectors
        are not asked), else every enabled pool whose nodeSelector selects the node; then those
        allowing ``use`` (libcalico-go's ``determinePools`` and ``filterPoolsByUse``).

        Raises:
            PoolNotUsable: a requested pool does not exist or is disabled, or no pool is left
                (the CNI plugin's words).
        """
        if requested:
            out = []
            for name in requested:
                pool = next((p for p in self.pools if name in (p.name, p.cidr)), None)
                if pool is None or pool.disabled:
                    raise PoolNotUsable(f"the given pool ({name}) does not exist, or is not enabled")
                out.append(pool)
        else:
            labels = self.labels_of(node)
            out = [p for p in self.pools if not p.disabled and calicoselector.parse(p.node_selector)(labels)]
        if not out:
            raise PoolNotUsable(f"no configured Calico pools for node {node}")
        allowed = [p for p in out if use in p.allowed_uses]
        if not allowed:
            raise PoolNotUsable(f"no pools match the required use ({use})")
        return allowed

    def set_pools(self, pools: tuple[Pool, ...]) -> None:
        """The IP pools as they are now (one written, changed or deleted): an empty block of a
        pool that is gone is released; one still holding addresses stays until they go."""
        self.pools = pools
        names = {p.name for p in pools}
        for block in [b for b in self.blocks.values() if b.pool not in names and not b.allocations]:
            del self.blocks[block.cidr]

    def allocate(self, node: str, handle: str, requested: tuple[str, ...] = (), use: str = "Workload") -> str:
        """An address for ``handle`` on ``node`` (the same handle asking again gets the same),
        from the pools ``choose`` picks: a block affine to the node, a new block, or a borrowed
        address, in that order.

        Raises:
            AddressesExhausted: every block of those pools is full (PoolNotUsable: a requested
                pool does not exist or is disabled).
        """
        if handle in self.handles:
            return self.handles[handle]
        pools = self.choose(node, requested, use)
        names = {p.name for p in pools}
        for block in self.affine(node):
            ip = block.take(handle) if block.pool in names else None
            if ip:
                return self._used(ip, node, handle)
        block = self._claim(node, pools)
        if block is not None:
            return self._used(block.take(handle) or "", node, handle)
        for block in self.blocks.values():  # borrow: strictAffinity false
            ip = block.take(handle) if block.pool in names else None
            if ip:
                return self._used(ip, node, handle)
        raise AddressesExhausted("no free address in IP pool(s) " + ", ".join(p.cidr for p in pools)
                                 + " (every block is claimed and full)")

    def release(self, ip: str) -> None:
        block = self.block_of(ip)
        if block is None:
            return
        ordinal = block.ordinal(ip)
        handle = block.allocations.pop(ordinal, None)
        if handle is not None:
            block.unallocated.append(ordinal)
            self.handles.pop(handle, None)
        self.used_on.pop(ip, None)
        pool_gone = all(p.name != block.pool for p in self.pools)
        if not block.allocations and (pool_gone or len(self.affine(block.affinity)) > 1):
            del self.blocks[block.cidr]

    def block_of(self, ip: str) -> Block | None:
        return next((b for b in self.blocks.values() if b.contains(ip)), None)

    def borrowed(self) -> dict[str, str]:
        """Addresses used on a node other than their block's: ip -> the node using it."""
        out = {}
        for ip, node in self.used_on.items():
            block = self.block_of(ip)
            if block is not None and block.affinity != node:
                out[ip] = node
        return out

    def for_node(self, node: str) -> "NodeAddresses":
        return NodeAddresses(self, node)

    def _used(self, ip: str, node: str, handle: str) -> str:
        self.used_on[ip], self.handles[handle] = node, ip
        return ip

    def _claim(self, node: str, pools: list[Pool]) -> Block | None:
        for pool in pools:
            for cidr in pool.blocks():
                if cidr not in self.blocks:
                    self.blocks[cidr] = Block(cidr, pool.name, node)
                    return self.blocks[cidr]
        return None


@dataclass
class NodeAddresses:
    """One node's view of the cluster's IPAM, with the per-node allocator's interface the
    scheduler uses (``model.ipam.NodeIPAM``'s ``allocate``/``release``/``allocated``)."""
    ipam: CalicoIPAM
    node: str

    def allocate(self, owner: str, requested: tuple[str, ...] = ()) -> str:
        return self.ipam.allocate(self.node, owner, requested)

    def release(self, ip: str) -> None:
        self.ipam.release(ip)

    @property
    def allocated(self) -> dict[str, str]:
        return {ip: h for h, ip in self.ipam.handles.items() if self.ipam.used_on.get(ip) == self.node}


def report(ipam: CalicoIPAM) -> dict:
    """The pools and blocks with their usage, and each borrowed address (what ``calicoctl ipam
    show --show-blocks --show-borrowed`` prints), as JSON-ready data."""
    pools = []
    for pool in ipam.pools:  # a pool deleted with addresses in use is gone from here; its blocks stay below
        blocks = [b for b in ipam.blocks.values() if b.pool == pool.name]
        pools.append({"name": pool.name, "cidr": pool.cidr, "blockSize": pool.block_size,
                      "encapsulation": pool.encapsulation, "natOutgoing": pool.nat_outgoing,
                      "disabled": pool.disabled,
                      "total": pool.network.num_addresses, "used": sum(len(b.allocations) for b in blocks)})
    blocks = [{"cidr": b.cidr, "pool": b.pool, "affinity": f"host:{b.affinity}", "total": b.size,
               "used": len(b.allocations),
               "allocations": [{"ip": b.address(o), "handle": h, "node": ipam.used_on.get(b.address(o), "")}
                               for o, h in sorted(b.allocations.items())]} for b in ipam.blocks.values()]
    borrowed = [{"ip": ip, "node": node, "block": block.cidr, "blockOwner": block.affinity,
                 "handle": block.allocations.get(block.ordinal(ip), "")}
                for ip, node in sorted(ipam.borrowed().items()) for block in [ipam.block_of(ip)] if block is not None]
    return {"pools": pools, "blocks": blocks, "borrowed": borrowed}

"""Per-node pod address management, host-local style.

Like the CNI host-local plugin, allocation continues after the last address handed out and
wraps around, so a freed address is not reused at once (a stale connection to a deleted pod
does not reach its successor). The network address, the gateway (.1) and the broadcast
address are never handed out.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


class AddressesExhausted(Exception):
    pass


@dataclass
class NodeIPAM:
    cidr: str
    allocated: dict[str, str] = field(default_factory=dict)  # ip -> owner (pod key)
    last: int = 1  # offset of the last address handed out; starts at the gateway

    def _size(self) -> int:
        return ipaddress.IPv4Network(self.cidr).num_addresses

    def allocate(self, owner: str) -> str:
        """Return a free address for ``owner``; the same owner asking twice gets the same one.

        Raises:
            AddressesExhausted: every usable address is taken.
        """
        for ip, who in self.allocated.items():
            if who == owner:
                return ip
        net = ipaddress.IPv4Network(self.cidr)
        size = self._size()
        for step in range(1, size):
            offset = (self.last + step) % size
            if offset in (0, 1, size - 1):
                continue
            ip = str(net.network_address + offset)
            if ip not in self.allocated:
                self.allocated[ip] = owner
                self.last = offset
                return ip
        raise AddressesExhausted(f"no free address in {self.cidr}")

    def release(self, ip: str) -> None:
        self.allocated.pop(ip, None)

    def to_dict(self) -> dict:
        return {"cidr": self.cidr, "allocated": dict(self.allocated), "last": self.last}

    @classmethod
    def from_dict(cls, data: dict) -> "NodeIPAM":
        return cls(data["cidr"], dict(data["allocated"]), data["last"])

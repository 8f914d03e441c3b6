"""Cookies that name owners: ``category << 56 | object id``.

Deleting everything a pod owns is one cookie-masked delete, and ``k8semu flows`` turns a cookie
back into ``pod default/web-x`` for the person reading the dump.
"""
from __future__ import annotations

from enum import IntEnum

CATEGORY_SHIFT = 56
ID_MASK = (1 << CATEGORY_SHIFT) - 1


class Category(IntEnum):
    PIPELINE = 0  # table-miss and other flows owned by no object
    NODE = 1  # the local node: gateway port, its ARP and routes
    POD = 2
    OVERLAY = 3  # one remote node: its pod CIDR and VTEP
    SERVICE = 4
    POLICY = 5
    DNS = 6
    INGRESS = 7


def make(category: Category, object_id: int) -> int:
    return (int(category) << CATEGORY_SHIFT) | (object_id & ID_MASK)


def split(cookie: int) -> tuple[Category, int]:
    return Category(cookie >> CATEGORY_SHIFT), cookie & ID_MASK

"""The API server's allocations: the owner index that makes an allocation cost the same with a
thousand Services as with one must always say what ``by_service`` says."""
from __future__ import annotations

import ipaddress
import random

from emulator.cluster import services
from emulator.cluster.services import Allocation, Allocations
from emulator.model.meta import ObjectMeta
from emulator.model.network import AddressPool
from emulator.model.service import Service, ServicePort


def recount(allocs: Allocations) -> dict:
    out = {}
    for key, a in allocs.by_service.items():
        for held in Allocations._held(a):
            assert held not in out, f"{held} handed out twice ({out.get(held)} and {key})"
            out[held] = key
    return out


def test_the_owner_index_follows_every_commit_and_release() -> None:
    rng = random.Random(3)
    first = int(ipaddress.IPv4Address("10.50.0.1"))
    allocs = Allocations("10.96.0.0/24", AddressPool(((first, first + 39),)))
    kinds = ["ClusterIP", "NodePort", "LoadBalancer"]
    for step in range(600):
        name = f"s{rng.randrange(60)}"
        if rng.random() < 0.25:
            allocs.release(f"default/{name}")
        else:
            svc = Service(ObjectMeta(name, "default"), rng.choice(kinds), {"app": name},
                          (ServicePort(80, name="a"), ServicePort(81, name="b")),
                          external_traffic_policy=rng.choice(["Cluster", "Local"]))
            got, problems = allocs.allocate(svc, rng)
            assert not problems, problems
            allocs.commit(svc.key, got)
        assert allocs.owners == recount(allocs), step


def test_a_taken_address_is_refused_and_a_released_one_is_free_again() -> None:
    allocs, rng = Allocations("10.96.0.0/24"), random.Random(1)
    allocs.commit("default/a", Allocation("10.96.0.50", (30001,)))
    svc = Service(ObjectMeta("b", "default"), "NodePort", {"app": "b"}, (ServicePort(80, node_port=30001),),
                  cluster_ip="10.96.0.50")
    got, problems = allocs.allocate(svc, rng)
    assert got is None and [p.field for p in problems] == ["spec.clusterIP", "spec.ports[0].nodePort"]
    assert "already allocated (to default/a)" in problems[0].message
    allocs.release("default/a")
    got, problems = allocs.allocate(svc, rng)
    assert not problems and got.cluster_ip == "10.96.0.50" and got.node_ports == (30001,)


def test_random_node_ports_leave_the_static_band_to_services_that_ask_for_a_port() -> None:
    """KEP-3668, as kube-apiserver 1.29+ allocates: a drawn NodePort is above the first 86 ports
    of 30000-32767 while any is free there, so an explicit 30080 does not meet a random one; only
    a full upper band sends draws into the static band, and a full range gives none."""
    rng = random.Random(7)
    assert services.NODE_PORT_STATIC == 86
    assert all(services.random_node_port(rng, lambda p: False) >= 30086 for _ in range(2000))
    upper_full = services.random_node_port(rng, lambda p: p >= 30086)
    assert 30000 <= upper_full < 30086
    assert services.random_node_port(rng, lambda p: True) == 0

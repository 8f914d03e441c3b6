"""Field ownership and server-side apply (emulator/api/fieldmanager.py) against what
kube-apiserver answers: conflicts worded as its fieldmanager words them, fields an applier stops
applying removed unless someone else owns them, and ownership taken by whoever changes a field."""
from __future__ import annotations

import copy

import pytest

from emulator.api import fieldmanager as fm
from emulator.api.patch import PatchError

T0, T1, T2 = "2026-12-06T10:00:00Z", "2026-12-06T10:01:00Z", "2026-12-06T10:02:00Z"


def deployment(replicas: int = 3, labels: dict | None = None, image: str = "nginx") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": labels or {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": image,
                                                           "ports": [{"containerPort": 80}]}]}}}}


def test_field_paths_follow_the_schema_associative_lists_and_atomic_selectors():
    paths = fm.field_set(deployment())
    image = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image")
    assert image in paths and image[:-1] in paths
    assert fm.path_text(image) == '.spec.template.spec.containers[name="web"].image'
    port = image[:-1] + ("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')
    assert port + ("f:containerPort",) in paths
    assert ("f:spec", "f:selector") in fm.leaves(paths)  # a LabelSelector is atomic
    assert not any(p[0] in ("f:apiVersion", "f:kind") or p[:2] == ("f:metadata", "f:name") for p in paths)


def test_managed_fields_are_written_as_fieldsV1():
    obj, entries = fm.apply([], None, deployment(), "kubectl", "apps/v1", T0, force=False)
    wire = entries[0].to_wire()
    assert (wire["manager"], wire["operation"], wire["fieldsType"]) == ("kubectl", "Apply", "FieldsV1")
    tree = wire["fieldsV1"]
    assert tree["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    container = tree["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert list(container)[0] == "." and "f:image" in container
    assert tree["f:spec"]["f:selector"] == {} and tree["f:spec"]["f:replicas"] == {}


def test_an_apply_that_changes_a_field_another_manager_set_is_refused_unless_forced():
    obj, entries = fm.apply([], None, deployment(3), "kubectl", "apps/v1", T0, force=False)
    scaled = copy.deepcopy(obj)
    scaled["spec"]["replicas"] = 5  # kubectl scale: an Update through the scale subresource
    entries = fm.record_update(entries, obj, scaled, "kubectl", "apps/v1", T1, subresource="scale")
    with pytest.raises(fm.ApplyConflict) as exc:
        fm.apply(entries, scaled, deployment(3), "kubectl", "apps/v1", T2, force=False)
    assert str(exc.value) == ('Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
                              'using apps/v1 at 2026-12-06T10:01:00Z: .spec.replicas')
    assert exc.value.causes() == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                   "message": 'conflict with "kubectl" with subresource "scale" using apps/v1 '
                                              'at 2026-12-06T10:01:00Z'}]
    forced, after = fm.apply(entries, scaled, deployment(3), "kubectl", "apps/v1", T2, force=True)
    assert forced["spec"]["replicas"] == 3
    assert [e.key for e in after] == [("kubectl", "Apply", "")]  # the scale entry owned nothing else


def test_the_same_value_is_shared_not_a_conflict():
    obj, entries = fm.apply([], None, deployment(3), "alice", "apps/v1", T0, force=False)
    obj, entries = fm.apply(entries, obj, deployment(3), "bob", "apps/v1", T1, force=False)
    replicas = ("f:spec", "f:replicas")
    assert all(replicas in e.fields for e in entries) and len(entries) == 2
    with pytest.raises(fm.ApplyConflict, match=r'conflict with "alice": \.spec\.replicas'):
        fm.apply(entries, obj, deployment(4), "bob", "apps/v1", T2, force=False)


def test_conflicts_with_several_managers_are_listed_by_manager():
    obj, entries = fm.apply([], None, deployment(3, image="nginx"), "alice", "apps/v1", T0, force=False)
    with pytest.raises(fm.ApplyConflict) as exc:
        fm.apply(entries, obj, deployment(4, image="httpd"), "bob", "apps/v1", T1, force=False)
    assert str(exc.value) == ('Apply failed with 2 conflicts: conflicts with "alice":\n- .spec.replicas\n'
                              '- .spec.template.spec.containers[name="web"].image')


def test_a_field_no_longer_applied_goes_unless_another_manager_owns_it():
    first = deployment(labels={"app": "web", "tier": "front", "team": "a"})
    obj, entries = fm.apply([], None, first, "kubectl", "apps/v1", T0, force=False)
    edited = copy.deepcopy(obj)
    edited["metadata"]["labels"]["team"] = "b"  # kubectl label --overwrite: team is now kubectl-label's
    entries = fm.record_update(entries, obj, edited, "kubectl-label", "apps/v1", T1)
    obj, entries = fm.apply(entries, edited, deployment(labels={"app": "web"}), "kubectl", "apps/v1", T2,
                            force=False)
    assert obj["metadata"]["labels"] == {"app": "web", "team": "b"}


def test_an_update_takes_what_it_changes_and_what_it_removes_is_nobodys():
    obj, entries = fm.apply([], None, deployment(labels={"app": "web", "tier": "front"}), "kubectl",
                            "apps/v1", T0, force=False)
    edited = copy.deepcopy(obj)
    del edited["metadata"]["labels"]["tier"]
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "httpd"
    entries = fm.record_update(entries, obj, edited, "kubectl-edit", "apps/v1", T1)
    mine = {e.manager: e for e in entries}
    image = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image")
    assert image in mine["kubectl-edit"].fields and image not in mine["kubectl"].fields
    assert ("f:metadata", "f:labels", "f:tier") not in mine["kubectl"].fields
    assert ("f:spec", "f:template", "f:spec", "f:containers") in mine["kubectl"].fields  # the rest stays its


def test_the_store_forgets_an_object_that_was_re_created():
    store = fm.Store()
    obj = {"metadata": {"name": "web", "namespace": "default", "uid": "1"}}
    store.put("Deployment", "default", "web", None, [fm.Entry("kubectl", "Apply", "apps/v1", T0, fields={("f:spec",)})])
    assert store.shown("Deployment", obj)["metadata"]["managedFields"][0]["manager"] == "kubectl"  # bound to uid 1
    again = {"metadata": {"name": "web", "namespace": "default", "uid": "2"}}
    assert store.get("Deployment", again) == [] and "managedFields" not in store.shown("Deployment", again)["metadata"]
    before = store.put("Deployment", "default", "web", "2", [])
    store.restore("Deployment", "default", "web", before)  # a write that failed
    assert store.get("Deployment", obj)[0].manager == "kubectl"


def test_an_applied_list_element_without_its_merge_key_is_refused():
    bad = deployment()
    del bad["spec"]["template"]["spec"]["containers"][0]["name"]
    obj, entries = fm.apply([], None, deployment(), "kubectl", "apps/v1", T0, force=False)
    with pytest.raises(PatchError, match="merge key"):
        fm.apply(entries, obj, bad, "kubectl", "apps/v1", T1, force=False)

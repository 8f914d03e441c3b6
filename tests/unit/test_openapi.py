"""The OpenAPI v3 documents: the schemas kubectl explain reads, Kubernetes' own (kubernetes-validate's copy)."""
from __future__ import annotations

import importlib.util
import json

from emulator.api import openapi, openapienums, resources
from tests.conftest import ROOT


def _generator():
    spec = importlib.util.spec_from_file_location("openapi_schemas", ROOT / "scripts" / "openapi_schemas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_schemas_are_what_the_generator_makes():
    """The file the server reads is the generator's output (regenerate with ``python
    scripts/openapi_schemas.py`` when the kinds served or the Kubernetes release change)."""
    assert openapi.SCHEMAS.exists(), f"{openapi.SCHEMAS} is missing (python scripts/openapi_schemas.py)"
    assert _generator().render() == openapi.SCHEMAS.read_text()


def test_every_served_kind_has_one_schema_with_its_group_version_kind():
    for r in resources.RESOURCES:
        doc = openapi.group_version_document(f"apis/{r.group}/{r.version}" if r.group else f"api/{r.version}")
        name = openapi.kind_schema_name(r)
        assert name in doc["components"]["schemas"], r.kind
        assert name.rsplit(".", 1)[1] == r.kind


def test_schemas_are_upstreams_and_every_reference_resolves():
    doc = openapi.group_version_document("apis/apps/v1")
    schemas = doc["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["description"] == "Deployment enables declarative updates for Pods and ReplicaSets."
    spec = schemas["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["required"] == ["selector", "template"]
    assert spec["properties"]["template"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"}]
    surge = schemas["io.k8s.api.apps.v1.RollingUpdateDeployment"]["properties"]["maxSurge"]
    assert surge["allOf"] == [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}]
    limits = schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"] == {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"}
    metadata = schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["metadata"]
    assert metadata["description"].startswith("Standard object's metadata.")
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert (containers["type"], containers["x-kubernetes-patch-merge-key"]) == ("array", "name")
    assert "enum" not in deployment["properties"]["kind"]
    for gv in ("api/v1", "apis/apps/v1", "apis/batch/v1", "apis/networking.k8s.io/v1",
               "apis/discovery.k8s.io/v1", "apis/policy/v1"):
        schemas = openapi.group_version_document(gv)["components"]["schemas"]
        assert set(openapi.refs(schemas)) <= set(schemas), gv


def test_patch_operations_do_not_offer_strategic_merge_patch():
    """kubectl apply builds its patch from served schemas only when the PATCH operation offers
    strategic-merge-patch as a request body; it keeps using its compiled-in types, as it did
    before schemas were served (the tests of apply's list merges hold for both)."""
    doc = openapi.group_version_document("api/v1")
    for item in doc["paths"].values():
        assert "requestBody" not in item.get("patch", {})


def test_root_lists_each_document_by_its_hash():
    """kubectl caches a document whose URL carries a hash, so the hash is the served body's."""
    root = openapi.root_document()["paths"]
    assert set(root) >= {"api/v1", "apis/apps/v1", "apis/networking.k8s.io/v1"}
    for path, entry in root.items():
        body, digest = openapi.served_document(path)
        assert entry["serverRelativeURL"] == f"/openapi/v3/{path}?hash={digest}"
        assert json.loads(body) == openapi.group_version_document(path)


def test_the_fields_k8semu_emulates_carry_their_enum_lists() -> None:
    doc = openapi.group_version_document("api/v1")
    schemas = doc["components"]["schemas"]
    assert schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["type"]["enum"] == [
        "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
    assert schemas["io.k8s.api.core.v1.ServicePort"]["properties"]["protocol"]["enum"] == ["SCTP", "TCP", "UDP"]
    policy = openapi.group_version_document("apis/networking.k8s.io/v1")["components"]["schemas"]
    assert policy["io.k8s.api.networking.v1.NetworkPolicySpec"]["properties"]["policyTypes"]["items"]["enum"] == [
        "Egress", "Ingress"]
    for name, fields in openapienums.ENUMS.items():  # every listed field exists, each list sorted as kube-openapi's
        for field, values in fields.items():
            assert field in openapi._all_schemas()[name]["properties"], (name, field)
            assert values == sorted(values), (name, field)

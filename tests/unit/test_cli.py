"""The CLI in-process: usage errors, root check, plan, kubectl-style printing."""
from __future__ import annotations

import io
import re
from pathlib import Path

from emulator.cli import output
from emulator.cli.main import main
from emulator.status import ExitStatus

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out, err)
    return code, out.getvalue(), err.getvalue()


def test_without_root_is_a_one_line_error(monkeypatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    code, out, err = run(["get", "pods"])
    assert code == ExitStatus.NOT_ROOT
    assert err == "error: k8semu must run as root (try: sudo k8semu)\n"


def test_plan_needs_no_root_and_shows_the_topology(monkeypatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    code, out, _ = run(["plan", str(TOPOLOGIES / "default.yaml")])
    assert code == 0
    assert "worker-1        worker          172.18.0.3   10.244.1.0/24" in out


def test_plan_of_a_flannel_cluster_shows_its_data_plane_and_kube_proxys_rules(monkeypatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    code, out, _ = run(["plan", str(TOPOLOGIES / "services-flannel.yaml")])
    assert code == 0 and out.splitlines()[0].endswith("; cni flannel (vxlan), kube-proxy iptables")
    assert "worker-1        worker          172.18.0.3   10.244.1.0/24   cni0" in out
    code, out, _ = run(["plan", str(TOPOLOGIES / "services-flannel.yaml"), "--show", "flows"])
    assert code == 0 and "# node worker-1: kube-proxy (iptables)" in out
    assert re.search(r'-A KUBE-SERVICES -m comment --comment "default/kubernetes:https cluster IP" -m tcp -p tcp '
                     r"-d 10\.96\.0\.1 --dport 443 -j KUBE-SVC-", out)  # as kube-proxy writes it, not as iptables-save
    assert '--comment "default/web has no endpoints"' in out  # plan starts no pod: nothing is ready


def test_bad_spec_exits_with_spec_invalid(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("apiVersion: k8semu.io/v1alpha1\nkind: Clustr\n")
    code, _, err = run(["plan", str(tmp_path / "c.yaml")])
    assert code == ExitStatus.SPEC_INVALID
    assert "c.yaml:2:7: kind: expected 'Cluster', got 'Clustr'; did you mean 'Cluster'?" in err


def test_usage_error() -> None:
    assert run(["frobnicate"])[0] == ExitStatus.USAGE


def test_human_age_matches_kubectl() -> None:
    assert [output.human_age(s) for s in (5, 119, 125, 600, 7200, 30000, 200000)] == \
        ["5s", "119s", "2m5s", "10m", "120m", "8h", "2d7h"]


def test_pod_table_and_status_column() -> None:
    pod = {"metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"nodeName": "w1"},
           "status": {"phase": "Running", "podIP": "10.244.1.2", "conditions": [{"type": "PodScheduled", "status": "True"}],
                      "containerStatuses": [{"ready": False, "restartCount": 3,
                                             "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    text = output.render("Pod", [pod], "wide", all_namespaces=True)
    header, row = text.splitlines()
    assert header.split()[:6] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row.split()[:5] == ["default", "web-1", "0/1", "CrashLoopBackOff", "3"]
    assert "10.244.1.2" in row and "w1" in row


import pytest  # noqa: E402

from emulator.cli import objects  # noqa: E402
from emulator.cli.main import build_parser, parse, verbs  # noqa: E402
from emulator.errors import K8semuError  # noqa: E402


@pytest.mark.parametrize("argv, expected", [
    (["get", "svc", "web"], {"kind": "svc", "names": ["web"]}),
    (["get", "pods", "-n", "shop", "web"], {"kind": "pods", "names": ["web"], "namespace": "shop"}),
    (["get", "svc/web", "-o", "yaml"], {"kind": "svc/web", "output": "yaml"}),
    (["exec", "web", "-c", "app", "--", "sh", "-c", "echo hi"],
     {"target": "web", "container": "app", "command": ["sh", "-c", "echo hi"]}),
    (["exec", "-n", "shop", "-it", "pod/web", "--", "ls", "-l"],
     {"target": "pod/web", "namespace": "shop", "command": ["ls", "-l"], "stdin": True, "tty": True}),
    (["logs", "web", "-n", "shop", "-c", "app"], {"pod": "web", "namespace": "shop", "container": "app"}),
    (["delete", "pod", "a", "b", "-n", "x", "--wait=false"], {"kind": "pod", "names": ["a", "b"], "wait": "false"}),
    (["scale", "deployment", "web", "--replicas=3"], {"target": ["deployment", "web"], "replicas": 3}),
    (["scale", "deploy/web", "-n", "x", "--replicas", "0"], {"target": ["deploy/web"], "replicas": 0, "namespace": "x"}),
])
def test_flags_and_names_mix_as_kubectl_parses_them(argv: list[str], expected: dict) -> None:
    args = vars(parse(build_parser(), argv))
    assert {k: args[k] for k in expected} == expected


def test_what_follows_double_dash_is_never_a_flag_of_k8semu() -> None:
    args = parse(build_parser(), ["exec", "web", "--", "curl", "-n", "--cluster", "x", "--", "-o"])
    assert args.command == ["curl", "-n", "--cluster", "x", "--", "-o"] and args.namespace is None


def test_kind_slash_name_is_kubectls_other_spelling() -> None:
    assert objects.kind_and_names("svc/web", ["svc/db"]) == ("svc", ["web", "db"])
    assert objects.kind_and_names("svc", ["web"]) == ("svc", ["web"])
    assert objects.pod_name("pod/web") == "web" and objects.pod_name("web") == "web"
    for kind, names in (("svc/web", ["pod/x"]), ("svc", ["svc/web"]), ("svc/web", ["db"])):
        with pytest.raises(K8semuError):
            objects.kind_and_names(kind, names)
    with pytest.raises(K8semuError):
        objects.pod_name("svc/web")
    for target in (["web"], ["deployment", "web", "db"], ["deployment/web", "db"]):
        with pytest.raises(K8semuError):
            objects.scale(None, target, 1, None, None)  # refused before the client is asked


def test_the_shell_knows_every_verb_from_the_parser() -> None:
    assert {"get", "exec", "apply", "delete", "describe", "logs", "probe", "dns"} <= set(verbs())


def test_probe_refuses_sctp_on_a_kernel_without_it_and_unknown_protocols(monkeypatch) -> None:
    from emulator.client import probe
    with pytest.raises(K8semuError, match="expected one of tcp, udp, sctp"):
        probe.check_protocols(["icmp"])
    monkeypatch.setattr(probe, "sctp_missing", lambda: "Protocol not supported")
    with pytest.raises(K8semuError, match="this kernel has no SCTP .*Protocol not supported"):
        probe.check_protocols(["tcp", "sctp"])
    probe.check_protocols(["tcp", "udp"])

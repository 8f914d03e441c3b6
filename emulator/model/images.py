"""The image catalogue: which local program a container image runs.

There is no container runtime here, so an image name is mapped to an ENTRYPOINT and CMD that
run programs installed on the machine. Kubernetes' rules then apply unchanged: a container's
``command`` replaces the ENTRYPOINT and ``args`` replace the CMD, and ``$(VAR)`` references
are expanded from the container's environment. ``{python}`` stands for the interpreter k8semu
runs on, so the helper images (``emulator.images.*``) need nothing else installed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from emulator.model.pod import Container


@dataclass(frozen=True)
class Image:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    description: str = ""
    files: str = ""  # a maker in emulator.images.files: the image's files, written by the kubelet
    stand_in: bool = False  # runs its own ENTRYPOINT whatever the container's command says


def stand_in(component: str, worker: str = "the manager process does its work (k8semu status)") -> Image:
    """A control-plane or node-daemon image (kubeadm's static pods, the data plane's agent,
    MetalLB's): k8semu's own processes do that work, so the container only says so and sleeps;
    its command line (the flags a student greps for) is shown, never run. The text is fixed here,
    not taken from a manifest."""
    return Image(("sh", "-c", 'echo "$1"; exec sleep infinity', "sh", f"k8semu: this pod stands for {component}; {worker}"),
                 (), f"stand-in for {component} ({worker})", stand_in=True)


def image_of(container: Container, extra: Mapping[str, Image]) -> Image | None:
    """The catalogue entry a container runs, when its ENTRYPOINT is the image's (no ``command``)."""
    return None if container.command else lookup(container.image, extra)


SLEEP = Image((), ("sleep", "infinity"), "a shell that sleeps, for exec")
NGINX = Image(("nginx",), (), "real nginx on :80 serving a page that names the pod and its IP", files="nginx")
ECHO = Image(("{python}", "-m", "emulator.images.echo"), (),
             "HTTP echo server on $PORT (default 80): replies with the request, pod and client")

BUILTIN: dict[str, Image] = {
    "nginx": NGINX,
    "nginxdemos/hello": NGINX,
    "registry.k8s.io/nginx-slim": NGINX,  # the StatefulSet tutorial's image
    "k8s.gcr.io/nginx-slim": NGINX,
    "gcr.io/google_containers/nginx-slim": NGINX,
    "k8semu/echo": ECHO,
    "ealen/echo-server": ECHO,
    "mendhak/http-https-echo": ECHO,
    "hashicorp/http-echo": Image(("{python}", "-m", "emulator.images.echo", "--http-echo"), (),
                                 "hashicorp's echo: replies -text on -listen (default :5678)"),
    "k8s.gcr.io/echoserver": Image(("{python}", "-m", "emulator.images.echo", "--port", "8080"),
                                   (), "echo server on :8080"),
    "registry.k8s.io/echoserver": Image(("{python}", "-m", "emulator.images.echo", "--port",
                                         "8080"), (), "echo server on :8080"),
    "registry.k8s.io/coredns/coredns": Image(("{python}", "-m", "emulator.dns.server"), (),
                                             "k8semu's CoreDNS-like server (Corefile, kubernetes plugin)"),
    "coredns/coredns": Image(("{python}", "-m", "emulator.dns.server"), (), "k8semu's CoreDNS-like server"),
    "registry.k8s.io/ingress-nginx/controller": Image(("{python}", "-m", "emulator.ingress.controller"), (),
                                                      "nginx driven by Ingress objects"),
    "busybox": SLEEP,
    "alpine": SLEEP,
    "debian": SLEEP,
    "ubuntu": SLEEP,
    "curlimages/curl": SLEEP,
    "radial/busyboxplus": SLEEP,
    "nicolaka/netshoot": SLEEP,
    "python": SLEEP,
    "registry.k8s.io/pause": SLEEP,
    "registry.k8s.io/kube-apiserver": stand_in("kube-apiserver"),
    "registry.k8s.io/kube-controller-manager": stand_in("kube-controller-manager"),
    "registry.k8s.io/kube-scheduler": stand_in("kube-scheduler"),
    "registry.k8s.io/etcd": stand_in("etcd"),
    "k8semu/openflow-agent": stand_in("the node's OpenFlow agent", "k8semu's OpenFlow controller programs this "
                                      "node's Open vSwitch bridge (k8semu flows <node>)"),
    "flannel/flannel": stand_in("flanneld", "k8semu made this node's flannel.1, its routes, neighbour and "
                                          "forwarding entries and FLANNEL-POSTRTG/FLANNEL-FWD at start-up"),
    "calico/node": stand_in("calico-node", "BIRD runs in this node's namespace (birdc show protocols); k8semu "
                                       "wrote its bird.conf and Felix's routes and cali-nat-outgoing chain"),
    "registry.k8s.io/kube-proxy": stand_in("kube-proxy", "k8semu's manager loads this node's kube-proxy rules "
                                           "(iptables-save -t nat, or nft list table ip kube-proxy)"),
    "quay.io/metallb/speaker": stand_in("MetalLB's speaker", "k8semu's node agent answers ARP for the "
                                        "LoadBalancer addresses this node announces"),
    "k8s.gcr.io/pause": SLEEP,
    "registry.k8s.io/e2e-test-images/regression-issue-74839": Image(
        ("{python}", "-m", "emulator.images.boom"), (),
        "the e2e boom server: :9000, injects an out-of-window segment after each handshake"),
    "networkstatic/iperf3": Image(("iperf3",), ("-s",), "iperf3 server on :5201"),
    "iperf3": Image(("iperf3",), ("-s",), "iperf3 server on :5201"),
}

# Names that users write in ``command`` and that the machine spells differently.
COMMAND_ALIASES = {"python": "python3"}


class UnknownImage(Exception):
    def __init__(self, image: str, choices: list[str]) -> None:
        self.image = image
        self.choices = choices
        super().__init__(
            f"image {image!r} has no local program and the container gives no command; "
            f"known images: {', '.join(sorted(choices))} (or map it under spec.images)")


def repository(image: str) -> str:
    """``docker.io/library/nginx:1.25@sha256:..`` -> ``nginx``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: len(name) - len(last[-1])] + last[-1].split(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return name


def lookup(image: str, extra: Mapping[str, Image]) -> Image | None:
    repo = repository(image)
    return extra.get(image) or extra.get(repo) or BUILTIN.get(repo)


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: unknown references stay as written, ``$$`` is ``$``."""
    def sub(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _VAR.sub(sub, text)


def argv_for(container: Container, extra: Mapping[str, Image], env: Mapping[str, str],
             python: str) -> list[str]:
    """The argv a container runs.

    Raises:
        UnknownImage: no mapping for the image and no ``command`` in the manifest.
    """
    image = lookup(container.image, extra)
    if image is not None and image.stand_in:
        entry, cmd = image.entrypoint, image.cmd
    elif container.command:
        entry, cmd = container.command, container.args
    elif image is None:
        raise UnknownImage(container.image, list(BUILTIN) + list(extra))
    else:
        entry, cmd = image.entrypoint, container.args or image.cmd
    argv = [expand(a, env).replace("{python}", python) for a in (*entry, *cmd)]
    if not argv:
        raise UnknownImage(container.image, list(BUILTIN) + list(extra))
    argv[0] = COMMAND_ALIASES.get(argv[0], argv[0])
    return argv

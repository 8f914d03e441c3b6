"""What the kubelet writes into a pod: /etc/hosts, /etc/resolv.conf and the environment.

Pure functions, so the exact text is unit-tested against what kubelet produces.
"""
from __future__ import annotations

import os
from typing import Callable

from emulator.errors import RenderError
from emulator.model import validation
from emulator.model.images import expand
from emulator.model.pod import Container, Pod
from emulator.model.projection import PodFacts, field_value, resource_value


def _checked(value: str, ok: bool, what: str) -> str:
    if not ok:
        raise RenderError(f"{what} {value!r} cannot be written into a pod's files")
    return value


def hosts_file(hostname: str, ip: str, fqdn: str = "", aliases: tuple = ()) -> str:
    """Kubelet's managed hosts file (``# Kubernetes-managed hosts file.``): the pod's own line
    (its FQDN first when it has a hostname and subdomain), then hostAliases.

    Raises:
        RenderError: a name or address that does not pass its rule.
    """
    _checked(hostname, validation.is_dns1123_label(hostname), "hostname")
    _checked(ip, validation.is_ip(ip), "pod IP")
    if fqdn:
        _checked(fqdn, validation.is_dns1123_subdomain(fqdn), "FQDN")
    names = f"{fqdn}\t{hostname}" if fqdn else hostname
    out = ("# Kubernetes-managed hosts file.\n"
           "127.0.0.1\tlocalhost\n"
           "::1\tlocalhost ip6-localhost ip6-loopback\n"
           "fe00::0\tip6-localnet\n"
           "fe00::0\tip6-mcastprefix\n"
           "fe00::1\tip6-allnodes\n"
           "fe00::2\tip6-allrouters\n"
           f"{ip}\t{names}\n")
    if aliases:
        out += "\n# Entries added by HostAliases.\n"
        for alias_ip, hostnames in aliases:
            _checked(alias_ip, validation.is_ip(alias_ip), "hostAliases ip")
            for name in hostnames:
                _checked(name, validation.is_dns1123_subdomain(name), "hostAliases hostname")
            out += f"{alias_ip}\t" + "\t".join(hostnames) + "\n"
    return out


def node_hosts_file(node: str, node_ip: str, aliases: tuple = ()) -> str:
    """A ``hostNetwork`` pod's /etc/hosts: kubelet copies its node's hosts file (here the one a
    node of kind has: localhost and the node's own name), then adds hostAliases.

    Raises:
        RenderError: a name or address that does not pass its rule.
    """
    text = hosts_file(node, node_ip, "", aliases)
    return text.replace("# Kubernetes-managed hosts file.\n", "# Kubernetes-managed hosts file (host network).\n", 1)


def resolv_conf(pod: Pod, dns_ip: str, domain: str, upstream: str = "") -> str:
    """The pod's /etc/resolv.conf, as kubelet writes it for each dnsPolicy.

    ClusterFirst: the cluster DNS, the namespace's search list and ndots:5, except for a
    ``hostNetwork`` pod, which kubelet gives its node's resolver as for Default (it must ask for
    ClusterFirstWithHostNet). Default: the node's resolver (in the emulation, the external DNS
    host if the spec declares one). None: dnsConfig alone. In every
    case dnsConfig's nameservers and searches are appended and its options override by name.
    Every word is checked before it is written: one resolv.conf line per setting, whatever the
    manifest says.

    Raises:
        RenderError: a nameserver, search domain or option that does not pass its rule.
    """
    config = pod.spec.raw.get("dnsConfig") or {}
    policy = pod.spec.dns_policy
    nameservers: list[str] = []
    searches: list[str] = []
    options: dict[str, str | None] = {}
    if policy == "ClusterFirst" and pod.spec.host_network:
        policy = "Default"
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        ns = pod.meta.namespace
        nameservers, searches, options = [dns_ip], [f"{ns}.svc.{domain}", f"svc.{domain}", domain], {"ndots": "5"}
    elif policy == "Default" and upstream:
        nameservers = [upstream]
    for server in config.get("nameservers") or []:
        if server not in nameservers:
            nameservers.append(server)
    for search in config.get("searches") or []:
        if search not in searches:
            searches.append(search)
    for option in config.get("options") or []:
        options[option.get("name")] = None if option.get("value") is None else option["value"]
    for server in nameservers:
        _checked(server, validation.is_ip(server), "nameserver")
    for search in searches:
        _checked(search, isinstance(search, str) and validation.check_search_path(search) is None, "search domain")
    for name, value in options.items():
        _checked(name, validation.check_resolv_token(name, "") is None, "resolver option")
        if value is not None:
            _checked(value, validation.check_resolv_token(value, "") is None, "resolver option value")
    lines = []
    if searches:
        lines.append("search " + " ".join(searches[:32]))
    lines += [f"nameserver {n}" for n in nameservers[:3]]
    if options:
        lines.append("options " + " ".join(k if v is None else f"{k}:{v}" for k, v in options.items()))
    return "\n".join(lines) + "\n" if lines else "# no resolver: dnsPolicy %s and no upstream\n" % policy


def pod_fqdn(pod: Pod, domain: str) -> str:
    """``<hostname>.<subdomain>.<namespace>.svc.<zone>`` when the pod has both, as kubelet
    writes it into /etc/hosts; "" otherwise."""
    if not pod.spec.subdomain:
        return ""
    return f"{hostname_of(pod)}.{pod.spec.subdomain}.{pod.meta.namespace}.svc.{domain}"


def hostname_of(pod: Pod) -> str:
    """spec.hostname, else the pod name cut to 63 characters without a trailing '-' or '.'
    (kubelet's GeneratePodHostNameAndDomain truncates the same way)."""
    return pod.spec.hostname or pod.meta.name[:63].rstrip("-.")


def service_env(services: list[tuple[str, str, list[tuple[str, str, int]]]]) -> dict[str, str]:
    """Docker-link style variables kubelet injects for Services that existed before the pod
    (``enableServiceLinks``). ``services``: (name, cluster IP, [(port name, protocol, port)])."""
    env: dict[str, str] = {}
    for name, ip, ports in services:
        if not ip or ip == "None" or not ports:
            continue
        prefix = name.upper().replace("-", "_")
        first_name, first_proto, first_port = ports[0]
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(first_port)
        for pname, _, port in ports:
            if pname:
                env[f"{prefix}_SERVICE_PORT_{pname.upper().replace('-', '_')}"] = str(port)
        env[f"{prefix}_PORT"] = f"{first_proto.lower()}://{ip}:{first_port}"
        for _, proto, port in ports:
            base = f"{prefix}_PORT_{port}_{proto.upper()}"
            env[base] = f"{proto.lower()}://{ip}:{port}"
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(port)
            env[f"{base}_ADDR"] = ip
    return env


IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ContainerConfigError(RenderError):
    """A ConfigMap or Secret (or a key of one) the container's environment needs is missing:
    kubelet's CreateContainerConfigError, retried until it appears."""


# (kind, name) -> the object's data as text, or None when there is no such object
Lookup = Callable[[str, str], "dict[str, str] | None"]


def _data(lookup: Lookup | None, kind: str, name: str, optional: bool) -> dict[str, str] | None:
    data = lookup(kind, name) if lookup is not None else None
    if data is None and not optional:
        raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
    return data


def container_env(pod: Pod, container: Container, ip: str, node: str, node_ip: str,
                  container_dir: str, services: dict[str, str] | None = None,
                  lookup: Lookup | None = None, facts: PodFacts | None = None) -> dict[str, str]:
    """The environment a container starts with, built as the kubelet builds it: the image's PATH
    (the standard one every Debian-based image sets, not the user's, whose entries may be masked) and
    HOSTNAME, then ``envFrom`` (every key of each ConfigMap or Secret, with its prefix; keys that
    are no variable name skipped), then the manifest's ``env`` in order (``$(VAR)`` references to
    earlier variables, ``fieldRef`` values and ConfigMap/Secret keys resolved), plus k8semu's
    identity variables.

    Raises:
        ContainerConfigError: a ConfigMap, Secret or key it names is missing and not optional.
    """
    facts = facts or PodFacts("", 0, 0)
    account = pod.spec.raw.get("serviceAccountName") or pod.spec.raw.get("serviceAccount") or "default"
    fields = {"metadata.name": pod.meta.name, "metadata.namespace": pod.meta.namespace,
              "spec.nodeName": node, "status.podIP": ip, "status.podIPs": ip, "status.hostIPs": node_ip,
              "status.hostIP": node_ip, "spec.serviceAccountName": str(account), "metadata.uid": facts.uid}
    env = {"PATH": IMAGE_PATH,
           "HOSTNAME": node if pod.spec.host_network else hostname_of(pod), "HOME": "/root", **(services or {})}
    for source in container.env_from:
        for key, value in (_data(lookup, source.kind, source.name, source.optional) or {}).items():
            if validation.check_env_name(source.prefix + key) is None:
                env[source.prefix + key] = value
    for var in container.env:
        if var.ref is not None:
            data = _data(lookup, var.ref.kind, var.ref.name, var.ref.optional)
            if data is not None and var.ref.key in data:
                env[var.name] = data[var.ref.key]
            elif data is not None and not var.ref.optional:
                raise ContainerConfigError(f"couldn't find key {var.ref.key} in {var.ref.kind} "
                                           f"{pod.meta.namespace}/{var.ref.name}")
            continue
        if var.resource is not None:
            env[var.name] = resource_value(pod, facts, var.resource)
        elif var.field_path.startswith(("metadata.labels[", "metadata.annotations[")):
            env[var.name] = field_value(pod, facts, var.field_path)
        else:
            env[var.name] = fields.get(var.field_path, "") if var.field_path else expand(var.value, env)
    env.update({"K8SEMU_POD_NAME": pod.meta.name, "K8SEMU_POD_NAMESPACE": pod.meta.namespace,
                "K8SEMU_POD_IP": ip, "K8SEMU_NODE_NAME": node, "K8SEMU_CONTAINER_DIR": container_dir,
                "PYTHONPATH": os.environ.get("K8SEMU_PYTHONPATH", "")})
    if not env["PYTHONPATH"]:
        del env["PYTHONPATH"]
    return env

"""The API server's rules for names and values, in one place (apimachinery's ``validation``).

Each ``is_*`` answers whether a value passes; each ``check_*`` returns the API server's message or
None, for the spec layer to attach to a located problem. Renderers call the same predicates again
before writing a value into a configuration file (defence in depth: a value must pass its rule
*and* be quoted for the syntax it lands in).

Sources: k8s.io/apimachinery/pkg/util/validation (names, labels, ports, env names with the
RelaxedEnvironmentVariableValidation rule, GA in 1.34), pkg/apis/core/validation (dnsConfig),
pkg/apis/networking/validation (Ingress paths), and ingress-nginx's inspector
(``validPathType``) and annotation validators (``RegexPathWithCapture``, ``IsValidRegex``).
"""
from __future__ import annotations

import ipaddress
import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
# Every pattern is used with fullmatch (Python's ``$`` also matches before a final newline,
# which is exactly the character an injection needs).
DNS1123_LABEL = re.compile(_LABEL)
DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
IANA_SVC_NAME = re.compile(r"[-a-z0-9]+")
HOSTNAME = re.compile(r"(?=.{1,253}\Z)([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*\.?")
# ingress-nginx: strict path validation for Exact/Prefix, and what a regex path may contain
NGINX_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._\-/]*")
NGINX_REGEX_PATH = re.compile(r"[/\-._~A-Za-z0-9:^$\[\](){}*+?|&=\\]*")
NGINX_REWRITE_TARGET = re.compile(r"/?[\-._~A-Za-z0-9/:$]*")
RESOLV_TOKEN = re.compile(r"[!-~]+")  # printable ASCII, no space: one word of resolv.conf


def is_dns1123_label(value: object) -> bool:
    return isinstance(value, str) and len(value) <= DNS1123_LABEL_MAX and bool(DNS1123_LABEL.fullmatch(value))


def is_dns1123_subdomain(value: object) -> bool:
    return isinstance(value, str) and len(value) <= DNS1123_SUBDOMAIN_MAX and bool(DNS1123_SUBDOMAIN.fullmatch(value))


def is_dns1035_label(value: object) -> bool:
    return isinstance(value, str) and len(value) <= DNS1123_LABEL_MAX and bool(DNS1035_LABEL.fullmatch(value))


def is_hostname(value: object) -> bool:
    """A DNS name as a hosts file or a DNS zone holds it (RFC 1123, any case, optional final dot)."""
    return isinstance(value, str) and bool(HOSTNAME.fullmatch(value))


def is_ip(value: object) -> bool:
    try:
        ipaddress.IPv4Address(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def check_dns1123_label(value: object) -> str | None:
    return None if is_dns1123_label(value) else (
        f"{value!r} is not a valid DNS-1123 label (lowercase letters, digits and '-', starting and "
        "ending with an alphanumeric, at most 63 characters)")


def check_dns1123_subdomain(value: object) -> str | None:
    return None if is_dns1123_subdomain(value) else (
        f"{value!r} is not a valid DNS-1123 subdomain (lowercase alphanumerics, '-' and '.', "
        "at most 253 characters)")


def check_dns1035_label(value: object) -> str | None:
    return None if is_dns1035_label(value) else (
        f"{value!r} is not a valid DNS-1035 label (a lowercase letter first, then lowercase "
        "letters, digits and '-', ending with an alphanumeric, at most 63 characters)")


def check_qualified_name(value: object) -> str | None:
    """Label and annotation keys: an optional DNS-subdomain prefix and '/', then a name."""
    if not isinstance(value, str) or not value:
        return "name part must be non-empty"
    prefix, _, name = value.rpartition("/")
    if "/" in value and not is_dns1123_subdomain(prefix):
        return f"{value!r}: prefix part {check_dns1123_subdomain(prefix)}"
    if len(name) > 63 or not QUALIFIED_NAME.fullmatch(name):
        return (f"{value!r}: name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character (at most 63 characters)")
    return None


def check_label_value(value: object) -> str | None:
    if isinstance(value, str) and len(value) <= 63 and LABEL_VALUE.fullmatch(value):
        return None
    return (f"{value!r}: a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character (at most 63)")


def check_port_name(value: object) -> str | None:
    """IANA_SVC_NAME: at most 15 characters, lowercase alphanumerics and '-', with a letter."""
    if (isinstance(value, str) and 0 < len(value) <= 15 and IANA_SVC_NAME.fullmatch(value)
            and re.search("[a-z]", value) and "--" not in value and not value.startswith("-")
            and not value.endswith("-")):
        return None
    return (f"{value!r} is not a valid port name (IANA_SVC_NAME: at most 15 characters, lowercase "
            "letters, digits and '-', at least one letter, no '--', not starting or ending with '-')")


def check_env_name(value: object) -> str | None:
    """Printable ASCII except '=' (RelaxedEnvironmentVariableValidation, GA in Kubernetes 1.34)."""
    if isinstance(value, str) and value and all(32 <= ord(c) <= 126 for c in value) and "=" not in value:
        return None
    return (f"{value!r} is not a valid environment variable name: it must consist only of printable "
            "ASCII characters other than '='")


def check_search_path(value: object) -> str | None:
    """A dnsConfig search domain: a DNS-1123 subdomain, optionally ending with a dot."""
    text = value[:-1] if isinstance(value, str) and value.endswith(".") else value
    return None if is_dns1123_subdomain(text) else check_dns1123_subdomain(value)


def check_resolv_token(value: object, what: str) -> str | None:
    """A word of resolv.conf (an option name or value): it may not split the line it is on.

    The API server only requires a dnsConfig option's name to be non-empty; kubelet writes it
    verbatim. A space or a newline there would add words or lines to every pod's resolv.conf,
    so k8semu refuses them (a deliberate, documented strictness)."""
    if isinstance(value, str) and value and RESOLV_TOKEN.fullmatch(value):
        return None
    return f"{value!r} is not a valid {what}: printable characters without spaces"


INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
INVALID_PATH_SUFFIXES = ("/..", "/.")


def check_ingress_path(path: object, path_type: str) -> str | None:
    """The API server's rules for an Ingress path, then ingress-nginx's strict path validation."""
    if not isinstance(path, str) or not path.startswith("/"):
        return f"{path!r}: must be an absolute path"
    if path_type in ("Exact", "Prefix"):
        for seq in INVALID_PATH_SEQUENCES:
            if seq in path:
                return f"{path!r}: must not contain '{seq}'"
        for suffix in INVALID_PATH_SUFFIXES:
            if path.endswith(suffix):
                return f"{path!r}: cannot end with '{suffix}'"
        if not NGINX_PLAIN_PATH.fullmatch(path):
            return (f"{path!r}: ingress-nginx accepts only letters, digits, '.', '_', '-' and '/' in an "
                    f"{path_type} path (strict-validate-path-type)")
    elif not NGINX_REGEX_PATH.fullmatch(path):
        return (f"{path!r}: ingress-nginx accepts only letters, digits, '/-._~:' and the regex characters "
                "^$[](){}*+?|&=\\ in an ImplementationSpecific path")
    return None


def check_rewrite_target(value: object) -> str | None:
    if isinstance(value, str) and NGINX_REWRITE_TARGET.fullmatch(value):
        return None
    return (f"{value!r}: ingress-nginx accepts a path with capture references ($1) made of letters, "
            "digits and '/-._~:$' (RegexPathWithCapture)")


def check_path_segment_name(value: object) -> str | None:
    """The names RBAC objects may have (path.IsValidPathSegmentName: ``system:basic-user`` is
    one); k8semu also refuses control characters, which would reach terminals as they are."""
    if not isinstance(value, str) or not value:
        return "name or generateName is required"
    for bad in (".", ".."):
        if value == bad:
            return f"{value!r}: may not be '{bad}'"
    for bad in ("/", "%"):
        if bad in value:
            return f"{value!r}: may not contain '{bad}'"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return f"{value!r}: may not contain control characters"
    return None

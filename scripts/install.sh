#!/usr/bin/env bash
# The one install step (make, .ci/run and the Dockerfile all run this): Debian packages, then a
# virtual environment on Debian's /usr/bin/python3 (the interpreter Debian's mininet package is
# built for) that sees the system packages, then k8semu itself, then the `k8semu` command.
# Idempotent: what is already there is not installed again.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo make install)" >&2
    exit 5
fi

packages=(
    openvswitch-switch   # the switches (kernel or userspace datapath)
    mininet              # node hosts (mnexec + the Python library for /usr/bin/python3)
    python3 python3-venv python3-pip make
    iproute2 bridge-utils ethtool procps util-linux hostname kmod iptables iputils-arping
    iputils-ping curl netcat-openbsd tcpdump dnsutils iperf3   # what pods and tests run
    nginx-light          # the nginx image
    dnsperf dnsmasq-base # the DNS benchmark and its reference server
    openssl              # the ingress controller's default certificate
    catatonit            # each pod's PID 1 (a pause process that reaps zombies)
    wrk                  # the ingress benchmark
    nftables             # nft: kube-proxy's nftables mode (its rules, loaded by bench/kubeproxy.py)
    containernetworking-plugins   # cni: flannel: bridge, host-local, portmap (run as a runtime runs them)
    ipset                # cni: flannel: the NetworkPolicy agent's sets
    conntrack            # cni: flannel: kube-proxy flushes stale UDP entries with it
    bird2                # cni: calico: BIRD in every node (Debian enables its service; k8semu never starts it)
    graphviz             # k8semu diagram and the web view: dot draws the cluster
    chromium chromium-driver   # the web view's tests: a real browser, headless
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The packages' own services are not wanted: k8semu starts Open vSwitch itself and runs
    # nginx per pod. policy-rc.d stops maintainer scripts from starting daemons; one that is
    # already there (Debian's container images ship it) is left as it was.
    made_policy=no
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        made_policy=yes
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$made_policy" = yes ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

stamp=.venv/.installed
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
    /usr/bin/python3 -m venv --system-site-packages .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
    touch "$stamp"
fi
ln -sf "$here/.venv/bin/k8semu" /usr/local/bin/k8semu
echo "install.sh: k8semu $(.venv/bin/k8semu --version | cut -d' ' -f2) ready ($(command -v k8semu))"

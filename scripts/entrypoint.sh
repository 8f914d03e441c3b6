#!/usr/bin/env bash
# Container entrypoint: start Open vSwitch (kernel datapath if the host has the module, else
# userspace with TSO), then hand over to k8semu with the container's arguments.
#   serve [SPEC] [PORT]: bring SPEC (default: the default cluster) up detached, then serve the
#   web view on the container's PORT (default 8765) for a port the host publishes on its loopback.
set -euo pipefail
k8semu ovs
if [ "${1:-}" = serve ]; then
    k8semu up --detach "${2:-topologies/default.yaml}"
    k8semu ui --address 0.0.0.0 --port "${3:-8765}" &
    ui=$!
    # podman stop sends SIGTERM: the web view ends, then the cluster is taken down properly
    trap 'kill -TERM "$ui" 2>/dev/null || true; wait "$ui" || true; k8semu down; exit 0' TERM INT
    wait "$ui" || true
    k8semu down
    exit 0
fi
exec k8semu "$@"

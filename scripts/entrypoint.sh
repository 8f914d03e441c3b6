#!/usr/bin/env bash
# Container entrypoint: start Open vSwitch (kernel datapath if the host has the module, else
# userspace with TSO), then hand over to k8semu with the container's arguments.
set -euo pipefail
k8semu ovs
exec k8semu "$@"

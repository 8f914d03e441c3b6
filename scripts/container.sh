#!/usr/bin/env bash
# The teaching image, built with podman and no registry (issue #15):
#   scripts/container.sh build   the Debian 12 base from debootstrap (once; podman import), then
#                                the Dockerfile on it: localhost/k8semu:latest
#   scripts/container.sh run ARGS...   podman run as this machine needs it (privileged, runc,
#                                cgroupfs, host ulimits, slirp4netns networking whose outbound
#                                connections are bound to loopback: the container reaches nothing)
# Everything is labelled io.k8semu=image; nothing global is changed (CONTAINERS_CONF is ours).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export CONTAINERS_CONF="$here/scripts/container/containers.conf"
BASE=localhost/k8semu-base:bookworm
IMAGE=localhost/k8semu:latest
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

need=()
for p in podman buildah debootstrap runc slirp4netns; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "container.sh: installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

case "${1:-build}" in
build)
    if ! podman image exists "$BASE"; then
        work=$(mktemp -d /var/tmp/k8semu-base.XXXXXX)
        trap 'rm -rf "$work"' EXIT
        echo "container.sh: debootstrap bookworm (minbase) from $MIRROR"
        debootstrap --variant=minbase bookworm "$work/rootfs" "$MIRROR" >/dev/null
        tar -C "$work/rootfs" -c . | podman import --change 'CMD ["bash"]' - "$BASE" >/dev/null
        echo "container.sh: $BASE imported"
    fi
    # this machine's CA bundle, mounted for the build's pip only (an HTTPS egress re-signed by a
    # local CA needs it; the image does not keep it)
    ca=()
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        ca=(--volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg HOST_CA=/run/host-ca.crt)
    fi
    podman build --network host --label io.k8semu=image --build-arg BASE="$BASE" "${ca[@]}" -t "$IMAGE" -f Dockerfile .
    # the build it replaced (ours: labelled), no longer tagged
    podman image prune -f --filter label=io.k8semu=image >/dev/null
    echo "container.sh: $IMAGE built"
    ;;
run)
    shift
    exec podman run --rm --privileged --ulimit host --label io.k8semu=run \
        --network slirp4netns:outbound_addr=127.0.0.1,enable_ipv6=false,allow_host_loopback=false "$@"
    ;;
*)
    echo "usage: scripts/container.sh build | run [podman run options] IMAGE [k8semu args]" >&2
    exit 2
    ;;
esac

# Teaching image: everything installed by the same step `make` uses (scripts/install.sh).
# No registry is needed: scripts/container.sh makes the Debian 12 base with debootstrap, imports
# it into podman and builds this file on it (BASE); with a registry, BASE=debian:12 works too.
#   sudo make container                     # build (podman, buildah), then:
#   sudo podman --runtime runc run --rm -it --privileged --cgroup-manager=cgroupfs --ulimit host \
#        localhost/k8semu scenario run scenarios/04-coredns.yaml
ARG BASE=debian:12
FROM ${BASE}
# HOST_CA: where the build sees the building machine's CA bundle (mounted, never copied into the
# image), for a machine whose HTTPS egress is re-signed by its own CA (pip's downloads)
ARG HOST_CA=
COPY . /opt/k8semu
WORKDIR /opt/k8semu
RUN if [ -n "$HOST_CA" ]; then export PIP_CERT="$HOST_CA"; fi; \
    bash scripts/install.sh && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["bash", "/opt/k8semu/scripts/entrypoint.sh"]
CMD ["up"]

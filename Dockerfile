# Teaching demo image: everything installed by the same step `make` uses (scripts/install.sh).
#   docker build -t k8semu .
#   docker run --rm -it --privileged k8semu up
FROM debian:12
COPY . /opt/k8semu
WORKDIR /opt/k8semu
RUN bash scripts/install.sh && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["bash", "/opt/k8semu/scripts/entrypoint.sh"]
CMD ["up"]

# etcd for the cluster compose file: Debian's etcd-server package on slim Debian, so the
# compose project needs no image from a registry beyond the Debian base.
#
#   docker build -f docker/etcd.Dockerfile -t sluice-etcd:local .

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends etcd-server \
    && rm -rf /var/lib/apt/lists/*
# The package creates the etcd user and its home, /var/lib/etcd.
USER etcd:etcd
VOLUME /var/lib/etcd
EXPOSE 2379
ENTRYPOINT ["/usr/bin/etcd"]
CMD ["--name", "etcd", "--data-dir", "/var/lib/etcd/data", \
     "--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://etcd:2379"]

# fosrd in a container: the daemon writing a pcap ring into a volume.
#
# Build and run (from the repository root):
#   docker build -t fosrd .
#   docker run -d --name fosrd -v fosrd-data:/var/lib/fosrd fosrd
#   docker exec fosrd fosrctl status
#   docker run --rm -v fosrd-data:/data busybox ls /data/var/ring
#
# The shipped configuration is copied to /etc/fosrd/fosrd.toml; its paths
# are relative to the working folder, /var/lib/fosrd (the volume), so the
# ring lands in /var/lib/fosrd/var/ring and the control socket in
# /var/lib/fosrd/var/run/fosrd.sock, where `fosrctl` looks by default.
# Mount another file over /etc/fosrd/fosrd.toml to change it.
#
# Metrics listen on the container's loopback by default, which nobody
# outside can reach: to scrape them, mount a configuration with
# [metrics] host = "0.0.0.0" and allow_remote = true, and publish the port
# (-p 127.0.0.1:9469:9469).
#
# The interface output needs CAP_NET_RAW, which a non-root user does not
# get in a container: run it with
#   --user root --cap-drop ALL --cap-add NET_RAW --network <lab network>
# and only ever point it at a lab network you own.
#
# No tshark or capture tools are installed: the daemon does not need them.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fosr ./fosr
COPY fosrd ./fosrd
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --user-group --no-create-home \
        --home-dir /var/lib/fosrd --shell /usr/sbin/nologin fosrd \
    && install -d -o fosrd -g fosrd -m 0750 /var/lib/fosrd
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY conf/fosrd.toml /etc/fosrd/fosrd.toml

WORKDIR /var/lib/fosrd
VOLUME ["/var/lib/fosrd"]
USER fosrd
ENV PYTHONUNBUFFERED=1
# SIGTERM stops generation, closes every file and exits within 5 s
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s \
    CMD ["fosrctl", "status"]
ENTRYPOINT ["fosrd", "--config", "/etc/fosrd/fosrd.toml"]

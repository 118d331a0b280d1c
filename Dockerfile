# dropship as an image: a Rust build stage, then a slim Debian with bubblewrap for the sandbox.
#   podman build -t dropship .        (or docker build)
# Run the service (its data in a volume, listening on all interfaces, so tokens are required):
#   podman run -d -p 8080:8080 -v dropship:/var/lib/dropship -e DROPSHIP_TOKENS=change-me \
#       --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#       --security-opt unmask=ALL dropship
# The staging sandbox (bubblewrap) needs, inside the container, user namespaces (forbidden by the
# default seccomp and AppArmor profiles) and a /proc it may mount again (the runtime masks parts
# of /proc, and the kernel then refuses a fresh one): hence the three options; with Docker the
# last one is `--security-opt systempaths=unconfined`. Or run with DROPSHIP_SANDBOX=none when
# the container itself is the isolation boundary.
ARG BASE=docker.io/library/debian:bookworm-slim
ARG RUST=docker.io/library/rust:1-bookworm

FROM ${RUST} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
RUN cargo build --release --locked \
 && install -D -m 0755 target/release/dropship /out/dropship \
 && strip /out/dropship

FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap busybox-static ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/dropship /usr/local/bin/dropship
# The shipped buildpacks, where the binary looks for them (<exe>/../share/dropship/buildpacks).
COPY buildpacks /usr/local/share/dropship/buildpacks
ENV DROPSHIP_LISTEN=0.0.0.0:8080 DROPSHIP_DATA_DIR=/var/lib/dropship
VOLUME /var/lib/dropship
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dropship"]
CMD ["serve"]

# dropship as an image: build stage (Rust), then a slim Debian with bubblewrap for the sandbox.
# At run time the staging sandbox needs user namespaces: run with
#   --security-opt seccomp=unconfined --security-opt apparmor=unconfined (Docker/podman), or
#   pass --sandbox none when the container itself is the isolation boundary.
FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
RUN cargo build --release --locked && strip target/release/dropship

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 1000 --create-home dropship
COPY --from=build /src/target/release/dropship /usr/local/bin/dropship
# The shipped buildpacks, where the binary looks for them (<exe>/../share/dropship/buildpacks).
COPY buildpacks /usr/local/share/dropship/buildpacks
USER 1000
ENV DROPSHIP_STACK_CACHE=/home/dropship/.cache/dropship
ENTRYPOINT ["/usr/local/bin/dropship"]
CMD ["--help"]

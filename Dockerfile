# kiam (Swift): a static release binary on Debian slim with iptables.
#   docker build -t registry.example.com/platform/kiam-swift:0.1.0 .
# The binary carries the Swift runtime (--static-swift-stdlib) and needs only glibc, libstdc++,
# libgcc and libre2 from the base image; `make image-check` runs it in a root filesystem with
# nothing else.
FROM swift:6.3-bookworm AS build
WORKDIR /src
# RE2 for Go-compatible regular expressions.
RUN apt-get update && apt-get install -y --no-install-recommends libre2-dev && rm -rf /var/lib/apt/lists/*
# Package.swift names the test and benchmark targets too, so the whole tree is needed.
COPY . .
RUN scripts/build-release.sh \
 && install -D -m 0755 "$(scripts/build-release.sh --show-bin-path)/kiam" /out/kiam \
 && strip /out/kiam

FROM debian:bookworm-slim
# iptables for the agent's DNAT rule (both backends: the agent writes its rule with the one the
# node's own rules are in, --iptables-backend), CA roots for STS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables ca-certificates libre2-9 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/kiam /kiam
# Same path as uswitch/kiam's image: manifests run `command: [/kiam]`.
ENTRYPOINT []
CMD ["/kiam", "version"]

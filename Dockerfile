# syntax=docker/dockerfile:1
#
# A FROM scratch image of the service, built with the Swift Static Linux SDK (musl): one
# static binary, no shell, no package manager, non-root.
#
#   docker build -t swift-service .                      # the production image (last stage)
#   docker build --target debug -t swift-service:debug . # the same binary on Debian, with a shell
#   docker build --build-arg VERSION=1.2.3 --build-arg REVISION="$(git rev-parse HEAD)" ...
#
# Multi-platform: docker buildx build --platform linux/amd64,linux/arm64 . (TARGETARCH picks
# the SDK's x86_64 or aarch64 musl target; the builder itself runs natively or under emulation).

# ---- builder: the official Swift image, pinned to the toolchain the static SDK is made for.
# Pin by digest too where you can: `docker buildx imagetools inspect swift:6.3.3-bookworm`
# prints it; append `@sha256:<digest>` to the FROM line below.
FROM swift:6.3.3-bookworm AS builder

# The Static Linux SDK must match the toolchain exactly (6.3.3); the checksum makes the
# download reproducible and tamper-evident.
ARG STATIC_SDK_URL=https://download.swift.org/swift-6.3.3-release/static-sdk/swift-6.3.3-RELEASE/swift-6.3.3-RELEASE_static-linux-0.1.0.artifactbundle.tar.gz
ARG STATIC_SDK_CHECKSUM=87c3eaf908e67c0e13a84367119e12273cec1d2cd3d81f7d74bb36722d6b607b
RUN swift sdk install "$STATIC_SDK_URL" --checksum "$STATIC_SDK_CHECKSUM"

WORKDIR /src

# Manifest first: dependencies are fetched once and cached until Package.swift changes.
COPY Package.swift ./
RUN swift package resolve

# Then the sources (and the test folders, which the manifest names; they are not built).
COPY Sources ./Sources
COPY Tests ./Tests

# Stamp the version and revision into the binary (`service --version`, the startup log line).
ARG VERSION=0.1.0-dev
ARG REVISION=unknown
RUN printf 'enum BuildInfo {\n    static let version = "%s"\n    static let revision = "%s"\n}\n' \
        "$VERSION" "$REVISION" > Sources/App/BuildInfo.swift

# Size flags, measured on the glibc stand-in (which .ci/run builds with this very line):
# whole-program LTO lets the linker drop unused code inside modules, and lld's identical code
# folding (--icf=all) merges the many byte-identical generic specializations: 16.3 MiB
# becomes 15.5 MiB, with throughput unchanged. -Osize would save 0.3 MB more but cost ~7% of
# requests/s, so it is not used. Set SIZE_FLAGS= (empty) to build without them (the image is
# then over the 16 MiB that .ci/container-check allows).
ARG SIZE_FLAGS="--experimental-lto-mode=full -Xswiftc -use-ld=lld -Xlinker --icf=all"
# Package traits: TRAITS=TLS builds HTTPS in (OpenSSL, about 4 MiB more). It needs OpenSSL's
# headers and static libraries for the target; see README ("HTTPS") for the musl SDK.
ARG TRAITS=""

# TARGETARCH (amd64, arm64) is set by BuildKit/buildah for the platform being built.
ARG TARGETARCH
# SIZE_FLAGS is a list of words: it is expanded unquoted on purpose.
# hadolint ignore=SC2086
RUN case "$TARGETARCH" in \
        amd64|"") arch=x86_64 ;; \
        arm64) arch=aarch64 ;; \
        *) echo "unsupported TARGETARCH: $TARGETARCH" >&2; exit 1 ;; \
    esac \
    && swift build -c release --product service --swift-sdk "$arch-swift-linux-musl" $SIZE_FLAGS \
        ${TRAITS:+--traits "$TRAITS"} -Xlinker -s \
    && mkdir -p /out \
    && cp "$(swift build -c release --swift-sdk "$arch-swift-linux-musl" --show-bin-path)/service" /out/service

# ---- debug: the same binary with a shell and a few tools, for when "no shell" gets in the
# way of an investigation (run it in place of the production image, or as a sidecar sharing
# the pod's process namespace). Never the default: it is not the last stage.
FROM debian:bookworm-slim AS debug
# DL3008 (pin apt package versions) is ignored here on purpose: the debug image is built when
# an investigation needs it and should get the current tools; it never ships.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates procps iproute2 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/service /service
USER 65534:65534
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/service", "-health-check"]
ENTRYPOINT ["/service"]

# ---- runtime: the production image. Only the binary: the service makes no outbound TLS
# calls (no CA certificates needed) and logs in UTC (no zoneinfo needed); add both here if
# yours does (COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ and
# /usr/share/zoneinfo).
FROM scratch AS runtime
ARG VERSION=0.1.0-dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="swift-service" \
      org.opencontainers.image.description="A production-grade HTTP service template in Swift" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION"
COPY --from=builder /out/service /service
# nobody:nogroup. The binary needs no capabilities and writes nothing: run it with a
# read-only root filesystem and every capability dropped.
USER 65534:65534
EXPOSE 8080
# SIGTERM starts the graceful drain (the binary handles it itself, also as PID 1).
STOPSIGNAL SIGTERM
# The binary probes its own /health over loopback: no curl in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/service", "-health-check"]
ENTRYPOINT ["/service"]

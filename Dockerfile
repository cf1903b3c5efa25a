# metalboot: DHCP, TFTP and HTTP network boot for Metal3/Ironic.
#
#   docker build -t metalboot .
#   docker run --network host -e SERVER_IP=192.168.100.2/24 metalboot
#
# There is no Docker engine in CI: .ci/docker-steps.sh runs this file's build-stage RUN lines
# as written (from the files the build stage COPYs) and re-checks the runtime stage (production
# dependencies only, the iPXE binaries, the capability, the entry point started as user 1000).
# Keep the two in step.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile TypeScript, then drop the dev dependencies -----------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- runtime -------------------------------------------------------------------------------
FROM ${NODE_IMAGE}

# ipxe puts undionly.kpxe, snponly.efi and ipxe.efi in /usr/lib/ipxe, the default --tftp-root.
# Debian bookworm builds that package for x86 firmware only: there is no arm64 snponly.efi in
# it. For arm64 hosts, mount one at /usr/lib/ipxe/arm64-efi/snponly.efi (see docs/deployment.md).
# libcap2-bin provides setcap: the node binary gets CAP_NET_BIND_SERVICE as a file capability,
# so user 1000 binds ports 67 and 69 (the pod must not set allowPrivilegeEscalation: false,
# which makes the kernel ignore file capabilities).
# socat hears the DHCP broadcasts of one interface when --dhcp-listen is an address of the pod
# (vCP's hostNetwork recipe; docs/decisions/0009-dhcp-on-one-interface.md). metalboot starts it
# and it binds port 67 itself, so it gets the same file capability: a child does not inherit
# node's.
# radvd answers iPXE's IPv6 router solicitation, so boots skip iPXE's ~15 s IPv6 wait
# (docs/decisions/0011-router-advertisement.md). metalboot starts it as user 1000; its raw
# ICMPv6 socket needs CAP_NET_RAW, given to radvd alone as a file capability (the pod adds
# NET_RAW to its capabilities; the chart does while routerAdvertisements.enabled is true).
# shim-signed and grub-efi-amd64-signed are the UEFI Secure Boot chain (secureBoot.*, decision
# 0013): Microsoft-signed shim, Debian-signed GRUB network image, served as shimx64.efi and
# grubx64.efi; they trust Debian-signed kernels only (see README, "Secure Boot").
RUN apt-get update \
 && apt-get install -y --no-install-recommends ipxe libcap2-bin socat radvd shim-signed grub-efi-amd64-signed \
 && rm -rf /var/lib/apt/lists/* \
 && setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")" \
 && setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v socat)")" \
 && setcap cap_net_raw=+ep "$(readlink -f "$(command -v radvd)")" \
 && ls /usr/lib/ipxe/undionly.kpxe /usr/lib/ipxe/snponly.efi /usr/lib/ipxe/ipxe.efi \
    /usr/lib/shim/shimx64.efi.signed /usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed

WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY ipxe-templates ./ipxe-templates
# The /ui page's files, served as they are (no build step).
COPY ui ./ui

ENV NODE_ENV=production
# glibc gives freed heap memory back to the kernel once 128 KiB of it sits at the top of the
# heap. Relaying an image frees a 64 KiB socket read buffer per chunk (the garbage collector
# frees them in batches), so every relayed byte landed on a page faulted in and zeroed anew:
# two thirds of the image worker's CPU (bench/RESULTS.md, ## HTTP). Keep up to 128 MiB instead.
ENV MALLOC_TRIM_THRESHOLD_=134217728
# The node image's "node" user has uid 1000; numeric so that runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 67/udp 69/udp 8080/tcp 8081/tcp

# Kubernetes ignores this and uses the chart's probes on /healthz and /readyz.
HEALTHCHECK --interval=30s --timeout=5s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "/app/dist/src/main.js"]
# metalboot expands $(VAR) in its arguments itself (as Kubernetes does for container args), so
# SERVER_IP from `docker run -e` or the pod's environment is honoured without a shell. The chart
# replaces these arguments with ones built from its values.
CMD ["--server-ip", "$(SERVER_IP)"]

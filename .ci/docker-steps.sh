#!/usr/bin/env bash
# The Dockerfile's steps, run on this machine so that CI proves them (no Docker engine here).
# The Dockerfile itself is read, so the two cannot drift apart silently:
#   build stage    its COPY sources go into a scratch /src and its RUN lines run there as
#                  written (npm ci, npm run build, npm prune --omit=dev);
#   runtime stage  its COPY lines assemble a scratch /app; then: dev dependencies are gone,
#                  the iPXE binaries are at /usr/lib/ipxe, the ENTRYPOINT answers --version and
#                  --help, and (as root) the ENTRYPOINT with the image's CMD starts as user 1000
#                  in a network namespace of its own, with the node binary given
#                  CAP_NET_BIND_SERVICE as the image gives it: it binds 67 and 69 and answers
#                  /healthz and /readyz, and radvd (given CAP_NET_RAW as the image gives it)
#                  opens its raw ICMPv6 socket for the router advertisements; and with
#                  --dhcp-listen=<its address>:67, socat (given the same capability as node)
#                  binds 67 on that interface. Its RUN line (apt-get, setcap) is not run on this
#                  machine; .ci/run installs the same Debian packages.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dockerfile="$root/Dockerfile"
work="$(mktemp -d)"
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
fail() { echo "docker steps: $*" >&2; exit 1; }

# The Dockerfile's instructions, one per line (continuations joined, comments dropped), each
# prefixed with the number of the stage it belongs to.
instructions() {
  awk '
    /^[[:space:]]*#/ { next }
    { line = line $0 }
    /\\$/ { sub(/\\$/, "", line); next }
    { if (line ~ /[^[:space:]]/) { if (line ~ /^FROM[[:space:]]/) stage++; print stage "\t" line }; line = "" }
  ' "$dockerfile"
}

# Container paths map into the scratch directory: /src → $work/src, /app → $work/app.
host_path() { case "$1" in /*) echo "$work$1" ;; *) echo "$cwd/$1" ;; esac; }

copy() { # copy SOURCE (a host path) to DEST (a host path), with Docker's COPY rules
  local from="$1" to="$2"
  [[ -e "$from" ]] || fail "COPY source $from does not exist"
  if [[ -d "$from" ]]; then mkdir -p "$to"; cp -a "$from/." "$to/"
  elif [[ "$to" == */ ]]; then mkdir -p "$to"; cp -a "$from" "$to"
  else mkdir -p "$(dirname "$to")"; cp -a "$from" "$to"; fi
}

entrypoint=() cmd=() user=""
build_stage=""
cwd="$work"
while IFS=$'\t' read -r stage line; do
  read -r op rest <<<"$line"
  case "$op" in
    FROM)
      cwd="$work"
      [[ "$rest" =~ [[:space:]][Aa][Ss][[:space:]]+build$ ]] && build_stage="$stage" ;;
    WORKDIR) cwd="$(host_path "$rest")"; mkdir -p "$cwd" ;;
    COPY)
      read -r -a words <<<"$rest"
      from_stage=""
      if [[ "${words[0]}" == --from=* ]]; then from_stage="${words[0]#--from=}"; words=("${words[@]:1}"); fi
      dest="${words[-1]}"
      dest_host="$(host_path "$dest")"; [[ "$dest" == */ ]] && dest_host="${dest_host%/}/"
      for src in "${words[@]:0:${#words[@]}-1}"; do
        if [[ -n "$from_stage" ]]; then copy "$work$src" "$dest_host"
        else copy "$root/$src" "$dest_host"; fi
      done
      # As .dockerignore does: the build context has no test files.
      if [[ -z "$from_stage" && -d "$cwd/src" ]]; then find "$cwd/src" -name '*.test.ts' -delete; fi
      ;;
    RUN)
      if [[ "$stage" == "$build_stage" ]]; then
        echo "docker steps: RUN $rest"
        (cd "$cwd" && bash -euo pipefail -c "$rest") </dev/null >"$work/run.log" 2>&1 || { cat "$work/run.log" >&2; fail "RUN failed: $rest"; }
      fi ;;
    USER) user="$rest" ;;
    ENTRYPOINT) mapfile -t entrypoint < <(node -e 'for (const a of JSON.parse(process.argv[1])) console.log(a)' "$rest") ;;
    CMD) mapfile -t cmd < <(node -e 'for (const a of JSON.parse(process.argv[1])) console.log(a)' "$rest") ;;
  esac
done < <(instructions)

[[ -n "$build_stage" ]] || fail "no build stage (FROM … AS build) in the Dockerfile"
[[ "${entrypoint[0]:-}" == node ]] || fail "ENTRYPOINT does not start with node: ${entrypoint[*]:-none}"
[[ "$user" == 1000* ]] || fail "USER is not 1000: ${user:-unset}"
app="$work/app"
main="$(host_path "${entrypoint[1]}")"
[[ -f "$main" ]] || fail "ENTRYPOINT script ${entrypoint[1]} is not in the runtime stage"

# Production dependencies only: nothing the lock file marks "dev" is left, every dependency is.
node -e '
  const [lockFile, pkgFile, app] = process.argv.slice(1);
  const fs = require("node:fs");
  const lock = JSON.parse(fs.readFileSync(lockFile, "utf8"));
  const pkg = JSON.parse(fs.readFileSync(pkgFile, "utf8"));
  const dev = Object.entries(lock.packages).filter(([p, e]) => p !== "" && e.dev === true && fs.existsSync(`${app}/${p}`)).map(([p]) => p);
  const missing = Object.keys(pkg.dependencies ?? {}).filter((n) => !fs.existsSync(`${app}/node_modules/${n}/package.json`));
  if (dev.length || missing.length) {
    console.error(`dev-only packages left: ${dev.join(", ") || "none"}; dependencies missing: ${missing.join(", ") || "none"}`);
    process.exit(1);
  }' "$work/src/package-lock.json" "$app/package.json" "$app" || fail "the runtime stage's node_modules is not production-only"
[[ -f "$app/ipxe-templates/boot.ipxe" ]] || fail "ipxe-templates/ is not in the runtime stage"
[[ -f "$app/ui/index.html" && -f "$app/ui/app.js" ]] || fail "ui/ (the /ui page) is not in the runtime stage"

# The iPXE binaries of Debian's ipxe package at the default --tftp-root.
for f in undionly.kpxe snponly.efi ipxe.efi; do
  [[ -f "/usr/lib/ipxe/$f" ]] || fail "/usr/lib/ipxe/$f is missing (Debian package ipxe)"
done

# The entry point.
version="$(node -p 'require(process.argv[1]).version' "$app/package.json")"
got="$(node "$main" --version)"
[[ "$got" == "$version" ]] || fail "--version printed \"$got\", expected \"$version\""
node "$main" --help >/dev/null || fail "--help failed"

# The entry point with the image's CMD, as user 1000, binding 67 and 69 through the file
# capability, in a network namespace of its own (192.0.2.1/24 on a veth interface). Then again
# with --dhcp-listen=192.0.2.1:67 (vCP's hostNetwork recipe): node starts socat, which binds
# port 67 on prov0 through its own file capability, as the image gives it.
if [[ "$(id -u)" != 0 ]] || ! command -v setcap >/dev/null || ! command -v setpriv >/dev/null || ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
  echo "docker steps: start as user 1000 skipped (needs root, setcap, setpriv, unshare and ip)"
else
  command -v socat >/dev/null || fail "socat is missing (Debian package socat, installed by the Dockerfile and .ci/run)"
  radvd="$(command -v radvd || echo /usr/sbin/radvd)"
  [[ -x "$radvd" ]] || fail "radvd is missing (Debian package radvd, installed by the Dockerfile and .ci/run)"
  mkdir -p "$work/bin"
  cp "$(readlink -f "$(command -v node)")" "$work/bin/node"
  cp "$work/bin/node" "$work/bin/node-without-caps"
  setcap cap_net_bind_service=+ep "$work/bin/node"
  getcap "$work/bin/node" | grep -q cap_net_bind_service || fail "setcap did not take"
  cp "$(readlink -f "$(command -v socat)")" "$work/bin/socat"
  setcap cap_net_bind_service=+ep "$work/bin/socat"
  getcap "$work/bin/socat" | grep -q cap_net_bind_service || fail "setcap did not take on socat"
  cp "$(readlink -f "$radvd")" "$work/bin/radvd"
  setcap cap_net_raw=+ep "$work/bin/radvd"
  getcap "$work/bin/radvd" | grep -q cap_net_raw || fail "setcap did not take on radvd"
  uid="${user%%:*}"
  export work main uid
  unshare --net bash -euo pipefail -c '
    ip link set lo up
    ip link add prov0 type veth peer name prov1
    ip link set prov1 up
    ip addr add 192.0.2.1/24 dev prov0
    ip link set prov0 up
    as_user() { setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"; }
    bind67='\''const s = require("node:dgram").createSocket("udp4"); s.on("error", () => process.exit(1)); s.bind(67, "192.0.2.1", () => s.close())'\''
    if as_user "$work/bin/node-without-caps" -e "$bind67" 2>/dev/null; then
      without="note: user $uid binds port 67 even without it here (ip_unprivileged_port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start))"
    else without="refused without it"; fi
    as_user "$work/bin/node" -e "$bind67" || { echo "docker steps: user $uid cannot bind port 67 with the capability" >&2; exit 1; }
    export SERVER_IP=192.0.2.1/24 NODE_ENV=production
    # serve NAME ARGS…: the entry point as user $uid until /healthz and /readyz answer 200; the
    # UDP sockets then bound, with their processes, are left in $sockets.
    serve() {
      local name="$1"; shift
      # setpriv directly (not through the as_user function, which would run in a subshell): it
      # execs node, so $! is the server itself and the kill below stops it. socat is found on
      # PATH: the copy with the capability.
      PATH="$work/bin:$PATH" setpriv --reuid="$uid" --regid="$uid" --clear-groups "$work/bin/node" "$main" "$@" --log-level warn >"$work/$name.log" 2>&1 &
      local pid=$! ok=""
      for _ in $(seq 1 100); do
        if "$work/bin/node-without-caps" -e '\''
          const get = (p) => fetch(`http://192.0.2.1:8080${p}`).then((r) => r.status);
          Promise.all([get("/healthz"), get("/readyz")]).then(([h, r]) => process.exit(h === 200 && r === 200 ? 0 : 1), () => process.exit(1));
        '\'' 2>/dev/null; then ok=1; break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      sockets="$(ss -Hulnp 2>/dev/null || true)"
      # radvd starts last, after the listeners: give it a moment to open its raw socket.
      raw=""
      for _ in $(seq 1 50); do
        raw="$(ss -Hwanp 2>/dev/null || true)"
        grep -q "\"radvd\"" <<<"$raw" && break
        sleep 0.1
      done
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      if [[ -z "$ok" ]]; then echo "docker steps: the entry point ($name) did not become ready as user $uid:" >&2; cat "$work/$name.log" >&2; exit 1; fi
    }
    serve cmd "${@}"
    for port in 67 69; do
      grep -q ":$port " <<<"$sockets" || { echo "docker steps: nothing bound UDP port $port:" >&2; echo "$sockets" >&2; exit 1; }
    done
    echo "docker steps: started as user $uid with CAP_NET_BIND_SERVICE: UDP 67 and 69 bound, /healthz and /readyz answered 200 ($without)"
    grep -q "\"radvd\"" <<<"$raw" || { echo "docker steps: radvd opened no raw socket as user $uid:" >&2; echo "$raw" >&2; cat "$work/cmd.log" >&2; exit 1; }
    echo "docker steps: radvd (CAP_NET_RAW as a file capability) opened its raw ICMPv6 socket as user $uid"
    serve one-interface "${@}" --dhcp-listen=192.0.2.1:67
    grep -E "0\.0\.0\.0%prov0:67 .*\"socat\"" <<<"$sockets" >/dev/null || { echo "docker steps: socat did not bind UDP 67 on prov0:" >&2; echo "$sockets" >&2; exit 1; }
    echo "docker steps: --dhcp-listen=192.0.2.1:67 as user $uid: socat bound UDP 67 on prov0 through its capability, /readyz answered 200"
  ' bash "${cmd[@]}" || fail "the entry point did not start as user $uid"
fi

echo "docker steps: build stage (npm ci, build, prune), production-only runtime, iPXE binaries and entry point OK"

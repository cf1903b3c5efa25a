#!/usr/bin/env bash
# The install steps of the Dockerfile's build and runtime stages, run on this machine so CI
# proves them (no Docker engine is available here): a production-only install from the lock
# file into a scratch directory, and a start of the built entry point.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$root/package.json" "$root/package-lock.json" "$work/"
cp -r "$root/dist" "$root/ipxe-templates" "$work/" 2>/dev/null || cp -r "$root/dist" "$work/"
(cd "$work" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
node "$work/dist/src/main.js" --version
node "$work/dist/src/main.js" --help >/dev/null
echo "docker steps: production install and entry point OK"

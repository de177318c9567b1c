#!/usr/bin/env bash
# npm run bench -- <cni|ipam|bgp|netlink|instructions> [options]: builds, then runs scripts/bench-<name>.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-}; shift || true
case "$what" in
  cni|ipam|bgp|netlink|instructions) ;;
  *) echo "usage: npm run bench -- <cni|ipam|bgp|netlink|instructions> [options]" >&2; exit 2 ;;
esac
bash scripts/setup.sh >/dev/null
exec npx tsx "scripts/bench-$what.ts" "$@"

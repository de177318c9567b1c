#!/usr/bin/env bash
# Installs and builds everything the tests, the demo and the benchmarks need, on a new
# Debian 12 machine or an old one: Debian packages, npm packages from the lock file, the
# single executable. Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup: must run as root (network namespaces, netlink, BGP port 179): try sudo" >&2
  exit 1
fi

PKGS=(etcd-server etcd-client bird2 gobgpd golang-go golang-github-appc-cni-dev
      containernetworking-plugins nftables iproute2 iputils-ping procps hyperfine
      python3 make g++)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
# Debian's etcd-server and bird2 start system services on install; the tests start their own.
for svc in etcd bird; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

stamp=node_modules/.brindle-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

echo "setup: building dist/brindle"
npm run -s build

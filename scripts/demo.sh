#!/usr/bin/env bash
# npm run demo [-- --nodes N --keep --datastore etcd | down]: the virtual-cluster demo.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root to make network namespaces: run it as root (sudo npm run demo)" >&2
  exit 1
fi
bash scripts/setup.sh
exec npx tsx scripts/demo.ts "$@"

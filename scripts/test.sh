#!/usr/bin/env bash
# The whole suite, as CI runs it: setup (packages, npm, build), type check, then every
# tap test. Prints "N passed, N failed" as its last line. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# Namespaces left by a crashed earlier run (prefix bt + 4 hex, see test/helpers/netns.ts),
# only when older than an hour so that a suite running beside this one keeps its own.
for ns in $(find /var/run/netns -maxdepth 1 -name 'bt*' -mmin +60 -printf '%f\n' 2>/dev/null | grep -E '^bt[0-9a-f]{4}' || true); do
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
done

echo "test: type check"
npx tsc -p tsconfig.json --noEmit

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
env -u NODE_EXTRA_CA_CERTS npx tap --reporter=tap "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^# \{ total:' "$log" | tail -1 || true)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
skip=$(sed -nE 's/.*skip: ([0-9]+).*/\1/p' <<<"$summary")
echo "test files: $(grep -cE '^ok [0-9]' "$log" || true) passed, $(grep -cE '^not ok [0-9]' "$log" || true) failed"
grep -E '^not ok [0-9]' "$log" || true
echo "${pass:-0} passed, ${fail:-0} failed, ${skip:-0} skipped"
exit "$rc"

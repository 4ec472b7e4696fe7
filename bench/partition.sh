#!/usr/bin/env bash
# The inventory and the wallet run as processes of their own, each in a
# network namespace of its own joined to this one by a veth pair; the link
# of one or both is cut (packets dropped, no answer) for 1-10 s at random
# moments while customers check out and top up and an administrator edits
# the catalog, then restored. After each cut: every order final, no
# distributed transaction unfinished or waiting for an operator, no
# idempotency key stuck, stock and money balanced, every event counted once.
# Last, the wallet is cut for a minute, past the coordinator's retry bound:
# what it held up waits for an operator, flagged, until retried through the
# admin API, and then the same invariants hold (bench/partition.py says how).
#
#   bench/partition.sh               # release build, 30 cuts
#   bench/partition.sh --short       # debug build, 3 cuts: what CI runs
#   PARTITION_CUTS=100 PARTITION_SEED=7 bench/partition.sh
#
# Needs root (ip netns), iproute2, redis-server (a Redis of its own carries
# the events between the processes) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

cuts=${PARTITION_CUTS:-30}
profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --short) cuts=${PARTITION_CUTS:-3}; profile=debug; shift ;;
    *) echo "usage: $0 [--short]" >&2; exit 2 ;;
  esac
done

for tool in ip redis-server python3; do
  command -v "$tool" >/dev/null || { echo "bench/partition.sh needs $tool" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/partition.sh needs root: it makes network namespaces" >&2
  exit 2
fi

if [ "$profile" = release ]; then
  cargo build --release --locked -p shop-app-api
else
  cargo build --locked -p shop-app-api
fi

seed_args=()
if [ -n "${PARTITION_SEED:-}" ]; then seed_args=(--seed "$PARTITION_SEED"); fi
python3 bench/partition.py --shop "target/$profile/shop" --cuts "$cuts" "${seed_args[@]}"

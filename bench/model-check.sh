#!/usr/bin/env bash
# The TCC protocol's Promela model (infrastructure/tests/model/tcc.pml),
# checked exhaustively with spin: no assertion may fail and every end state
# must be a settled one. Then three broken versions of the protocol — a
# cancel that leaves no tombstone, a submit after one try, an abort after
# submit — each of which the checks must catch, so a model that stopped
# checking anything would fail here.
#
#   bench/model-check.sh
#
# Needs spin (apt install spin) and a C compiler. Takes a few seconds.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
model=$repo/infrastructure/tests/model/tcc.pml
command -v spin >/dev/null || { echo "spin is needed: apt install spin" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# check NAME [-DDEFINE]: verifies the model (with DEFINE, a broken version) and
# prints its errors and states; sets `errors`.
check() {
  local name=$1
  shift
  (
    cd "$work"
    rm -f pan pan.* ./*.trail
    spin "$@" -a "$model" >spin.log
    gcc -O2 -DSAFETY -o pan pan.c 2>gcc.log
    ./pan -m1000000 >pan.log
  )
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$work/pan.log")
  local states
  states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' "$work/pan.log")
  if grep -q 'max search depth too small' "$work/pan.log"; then
    echo "$name: the search was cut short (depth)" >&2
    exit 1
  fi
  printf '%-44s %8s states  %s error(s)\n' "$name" "$states" "$errors"
}

check "the protocol"
if [ "$errors" != 0 ]; then
  cat "$work/pan.log"
  (cd "$work" && spin -t -p "$model" | tail -40) || true
  echo "the TCC model found a fault" >&2
  exit 1
fi
for broken in NO_TOMBSTONE SUBMIT_ON_ONE_TRY ABORT_AFTER_SUBMIT; do
  check "broken: $broken" "-D$broken"
  if [ "$errors" = 0 ]; then
    echo "the model did not catch $broken" >&2
    exit 1
  fi
done
echo "TCC model checked"

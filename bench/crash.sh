#!/usr/bin/env bash
# The shop killed with SIGKILL at random moments while customers check out
# and top up and an administrator creates products and changes prices; after
# each restart and recovery, every order is final, no distributed transaction
# is left unfinished, no idempotency key stays in use, stock and money balance
# and the sales report counts every event once (bench/crash.py says how).
# Two runs: one shop on SQLite files, then three shops on one PostgreSQL and
# one Redis behind a round-robin client, one of them killed each time.
#
#   bench/crash.sh               # release build, 50 kills per run
#   bench/crash.sh --short       # debug build, 3 kills per run: what CI runs
#   CRASH_KILLS=200 CRASH_SEED=7 bench/crash.sh
#
# Needs python3 and Redis (STRATA_TEST_REDIS_URL, e.g. redis://127.0.0.1:6379):
# events go through Redis Streams, which outlive the process. The run of three
# needs STRATA_TEST_POSTGRES_URL (a server where databases may be created) and
# psql; without it, it is skipped and says so. Leases are shortened so each
# recovery takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

kills=${CRASH_KILLS:-50}
profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --short) kills=${CRASH_KILLS:-3}; profile=debug; shift ;;
    *) echo "usage: $0 [--short]" >&2; exit 2 ;;
  esac
done

if [ -z "${STRATA_TEST_REDIS_URL:-}" ]; then
  echo "bench/crash.sh needs Redis: set STRATA_TEST_REDIS_URL (redis://127.0.0.1:6379)" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 2; }

if [ "$profile" = release ]; then
  cargo build --release --locked -p shop-app-api
else
  cargo build --locked -p shop-app-api
fi

seed_args=()
if [ -n "${CRASH_SEED:-}" ]; then seed_args=(--seed "$CRASH_SEED"); fi
echo "== one shop on SQLite"
python3 bench/crash.py --shop "target/$profile/shop" --redis "$STRATA_TEST_REDIS_URL" \
  --kills "$kills" "${seed_args[@]}"
echo "== three shops on PostgreSQL"
if [ -z "${STRATA_TEST_POSTGRES_URL:-}" ]; then
  echo "skipped: set STRATA_TEST_POSTGRES_URL to run three shops on one PostgreSQL"
  exit 0
fi
python3 bench/crash.py --shop "target/$profile/shop" --redis "$STRATA_TEST_REDIS_URL" \
  --postgres "$STRATA_TEST_POSTGRES_URL" --instances 3 --kills "$kills" "${seed_args[@]}"

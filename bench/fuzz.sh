#!/usr/bin/env bash
# Runs each cargo fuzz target under fuzz/ for a bounded time, from its corpus
# (fuzz/corpus/<target>, kept between runs) and the regression cases of what
# fuzzing found (fuzz/regressions/<target>, replayed first, each must pass).
# A crash stops the run with the input that caused it under
# fuzz/artifacts/<target>; fuzz/README.md says how to make it a regression case.
#
#   bench/fuzz.sh                 # 10 minutes per target
#   bench/fuzz.sh --short         # 30 s per target: what CI runs
#   FUZZ_SECONDS=3600 bench/fuzz.sh value_objects config
#
# Needs a nightly toolchain (rustup toolchain install nightly) and cargo-fuzz
# (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-600}
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --short) seconds=${FUZZ_SECONDS:-30}; shift ;;
    -*) echo "usage: $0 [--short] [target...]" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# No sanitizer: the project forbids unsafe code, and the whole stack builds
# in half the time without one.
cargo +nightly fuzz build --sanitizer none

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  rm -rf "fuzz/artifacts/$target"
  regressions="fuzz/regressions/$target"
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    echo "== $target: $(ls "$regressions" | wc -l) regression cases"
    cargo +nightly fuzz run --sanitizer none "$target" "$regressions"/* -- -runs=1 >"$log" 2>&1 ||
      { tail -40 "$log" >&2; exit 1; }
  fi
  echo "== $target for ${seconds} s"
  status=0
  cargo +nightly fuzz run --sanitizer none "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)|^#[0-9]+ +DONE' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -60 "$log" >&2
    echo "$target failed; the input is under fuzz/artifacts/$target" >&2
    exit 1
  fi
done

#!/usr/bin/env bash
# How long a project generated from the template takes to build, against the same
# for bench/bare-shop (the shop's catalog endpoints on bare axum + sea-orm):
#
# * cold: `cargo build` with an empty target directory (crates already
#   downloaded), the generated workspace against bare-shop alone;
# * edit to test: a one-line change in the generated domain crate, then
#   `cargo test -p <project>-domain` (rebuilt and passing) and
#   `cargo test --workspace --no-run` (every test binary relinked); the baseline
#   is the same one-line change in bare-shop and `cargo build -p bare-shop`.
#
#   bench/build.sh            # cold builds, then 3 edits each
#   bench/build.sh --short    # no cold builds (the workspace's target directory
#                             # is shared), 1 edit each: what CI runs
#   BENCH_ROUNDS=5 bench/build.sh
#
# Debug builds, as `cargo run` and `cargo test` make them. Needs cargo-generate
# (installed by .ci/install-cargo-generate when missing). Prints a markdown table.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

rounds=${BENCH_ROUNDS:-3}
cold=true
while [ $# -gt 0 ]; do
  case "$1" in
    --short) cold=false; rounds=1; shift ;;
    *) echo "usage: $0 [--short]" >&2; exit 2 ;;
  esac
done

"$repo/.ci/install-cargo-generate"

work=$(mktemp -d)
bare_copy=$work/bare-shop-src
trap 'rm -rf "$work"' EXIT

name=build-bench
cargo generate --path "$repo/template" --name "$name" --destination "$work" \
  --vcs none --silent --define strata_source=path --define "strata_path=$repo"
project=$work/$name
cp Cargo.lock "$project/Cargo.lock"
# Downloads are not build time: fetch first.
cargo fetch --locked --quiet
# The generated project starts from this workspace's lock file, which names
# other workspace crates: its own entries are added, nothing else moves.
(cd "$project" && cargo fetch --quiet)

# bench/bare-shop is edited below; work on a copy of its source so the checkout
# is never left changed, even when the script is stopped.
cp -r bench/bare-shop "$bare_copy"
restore_bare() { cp "$bare_copy/src/main.rs" bench/bare-shop/src/main.rs; }
trap 'restore_bare; rm -rf "$work"' EXIT

# Runs a command in a directory and sets `elapsed` to the seconds it took.
timed() {
  local dir=$1 started
  shift
  started=$(date +%s.%N)
  if ! (cd "$dir" && "$@") >"$work/last.log" 2>&1; then
    cat "$work/last.log" >&2
    echo "failed: $*" >&2
    exit 1
  fi
  elapsed=$(awk -v from="$started" -v to="$(date +%s.%N)" 'BEGIN { printf "%.1f", to - from }')
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

rows=()
row() { rows+=("| $1 | $2 | $3 | $(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", a / b }') |"); }

if $cold; then
  project_target=$work/target-project
  bare_target=$work/target-bare
  CARGO_TARGET_DIR=$project_target timed "$project" cargo build --workspace
  project_cold=$elapsed
  CARGO_TARGET_DIR=$bare_target timed "$repo" cargo build --locked -p bare-shop
  row "cold \`cargo build\`" "$project_cold" "$elapsed"
else
  project_target=$repo/target
  bare_target=$repo/target
fi

# Everything is built once before the first timed edit, with each command the
# edits time (the domain crate's tests alone resolve features of their own).
CARGO_TARGET_DIR=$project_target timed "$project" cargo test --workspace --no-run
CARGO_TARGET_DIR=$project_target timed "$project" cargo test -p "$name-domain" --no-run
CARGO_TARGET_DIR=$bare_target timed "$repo" cargo build --locked -p bare-shop

domain_times=()
workspace_times=()
bare_times=()
for round in $(seq 1 "$rounds"); do
  echo "pub const BUILD_BENCH_EDIT: u32 = $round;" >>"$project/domain/src/lib.rs"
  CARGO_TARGET_DIR=$project_target timed "$project" cargo test -p "$name-domain"
  domain_times+=("$elapsed")
  echo "pub const BUILD_BENCH_EDIT_AGAIN: u32 = $round;" >>"$project/domain/src/lib.rs"
  CARGO_TARGET_DIR=$project_target timed "$project" cargo test --workspace --no-run
  workspace_times+=("$elapsed")
  sed -i '/^pub const BUILD_BENCH_EDIT/d' "$project/domain/src/lib.rs"

  echo "const _BUILD_BENCH_EDIT: u32 = $round;" >>bench/bare-shop/src/main.rs
  CARGO_TARGET_DIR=$bare_target timed "$repo" cargo build --locked -p bare-shop
  bare_times+=("$elapsed")
  restore_bare
done
bare_edit=$(printf '%s\n' "${bare_times[@]}" | median)
row "one-line edit in the domain crate → \`cargo test -p $name-domain\` passed" \
  "$(printf '%s\n' "${domain_times[@]}" | median)" "$bare_edit"
row "one-line edit in the domain crate → \`cargo test --workspace --no-run\`" \
  "$(printf '%s\n' "${workspace_times[@]}" | median)" "$bare_edit"

echo
echo "Build times on $(nproc) cores, $(date -u +%F), median of $rounds edit rounds (seconds)"
echo
echo "| measurement | generated project | bare-shop | ratio |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"

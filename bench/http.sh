#!/usr/bin/env bash
# The shop over HTTP against the same endpoints written by hand on bare axum +
# sea-orm (bench/bare-shop), under wrk, in one run, rounds alternating:
#
# * reads: GET /api/products/{id} and the first catalog page (20 products),
#   the shop with its query cache on and off, on one SQLite file, at
#   concurrency 16 and 64;
# * writes: product creation (unit of work, outbox, idempotency key, audit)
#   and a price change (optimistic version check), on SQLite and PostgreSQL;
# * the shop's resident memory idle and after each load.
#
#   bench/http.sh                # release build, 3 rounds of 10 s per case
#   bench/http.sh --short        # debug build, 1 round of 2 s: what CI runs
#   BENCH_SECONDS=20 BENCH_ROUNDS=5 bench/http.sh
#   BENCH_SECTIONS=reads bench/http.sh   # only the reads (or: writes,
#                                        # sqlite-writes, postgres-writes)
#   BENCH_BIN=/tmp/build bench/http.sh    # shop and bare-shop built already, there
#
# Needs wrk (apt install wrk) and, for the PostgreSQL writes,
# STRATA_TEST_POSTGRES_URL (postgres://user@host:port/db of a server where
# databases may be created); without it only SQLite is measured.
# Prints a table per section and the medians; the shop's request limit is
# switched off, its logging left at the default.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${BENCH_SECONDS:-10}
sections=${BENCH_SECTIONS:-reads writes}
rounds=${BENCH_ROUNDS:-3}
profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --short) seconds=2; rounds=1; profile=debug; shift ;;
    --debug) profile=debug; shift ;;
    *) echo "usage: $0 [--short] [--debug]" >&2; exit 2 ;;
  esac
done
threads=2

command -v wrk >/dev/null || { echo "wrk is needed: apt install wrk" >&2; exit 1; }
if [ -n "${BENCH_BIN:-}" ]; then
  bin=$BENCH_BIN
elif [ "$profile" = release ]; then
  cargo build --release --locked -p shop-app-api -p bare-shop
  bin=target/release
else
  cargo build --locked -p shop-app-api -p bare-shop
  bin=target/debug
fi

work=$(mktemp -d)
results=$work/results.tsv
pids=()
pg_databases=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for database in "${pg_databases[@]}"; do
    psql -q "$pg_admin_url" -c "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

admin_email=admin@bench.test
admin_password="a password for the bench admin"

wait_for() {
  for _ in $(seq 1 120); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "$1 did not answer" >&2
  exit 1
}

# start_shop NAME PORT DATABASE_URL INVENTORY_URL WALLET_URL [VAR=VALUE...]
start_shop() {
  local name=$1 port=$2 database=$3 inventory=$4 wallet=$5
  shift 5
  env SHOP_ENV=development NO_COLOR=1 \
    SHOP_DATABASE_URL="$database" \
    SHOP_INVENTORY__DATABASE_URL="$inventory" SHOP_WALLET__DATABASE_URL="$wallet" \
    SHOP_API_ADDR=127.0.0.1:$port SHOP_WEB_ADDR=127.0.0.1:0 SHOP_INTERNAL_ADDR=127.0.0.1:0 \
    SHOP_ADMIN_EMAIL=$admin_email SHOP_ADMIN_PASSWORD="$admin_password" \
    SHOP_HTTP__CLIENT_LIMIT__ENABLED=false \
    "$@" "$bin/shop" >"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "${name}_pid=$!"
  wait_for "http://127.0.0.1:$port/health/ready"
}

# start_bare NAME PORT DATABASE_URL
start_bare() {
  "$bin/bare-shop" --addr "127.0.0.1:$2" --database-url "$3" >"$work/$1.log" 2>&1 &
  pids+=($!)
  eval "${1}_pid=$!"
  wait_for "http://127.0.0.1:$2/api/products"
}

stop() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

token_at() {
  curl -fsS -X POST "http://127.0.0.1:$1/api/auth/sign-in" -H 'content-type: application/json' \
    -d "{\"email\":\"$admin_email\",\"password\":\"$admin_password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# measure SECTION CASE CONCURRENCY URL [SCRIPT [SCRIPT ARGUMENTS...]]: one wrk
# run, one row of results (requests/s, p50 and p99 in ms, answers other than
# 2xx/3xx, socket errors).
measure() {
  local section=$1 case=$2 connections=$3 url=$4 script=()
  shift 4
  if [ $# -gt 0 ]; then script=(-s "$1"); shift; fi
  local out=$work/wrk.out
  wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency "${script[@]}" "$url" -- "$@" \
    >"$out" 2>&1 || {
    cat "$out" >&2
    exit 1
  }
  python3 - "$out" "$section" "$case" "$connections" >>"$results" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(value):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
print("\t".join([sys.argv[2], sys.argv[3], sys.argv[4], f"{rps:.0f}", f"{p50:.2f}", f"{p99:.2f}",
                 bad.group(1) if bad else "0", errors.group(1) if errors else ""]))
PY
  tail -n1 "$results"
}

memory() { printf 'memory\t%s\t%s\n' "$1" "$(rss_kb "$2")" >>"$results"; tail -n1 "$results"; }

# --- reads ------------------------------------------------------------------
reads() {
  local dir=$work/reads
  mkdir -p "$dir"
  local db="sqlite://$dir/shop.db?mode=rwc"
  local inventory="sqlite://$dir/inventory.db?mode=rwc" wallet="sqlite://$dir/wallet.db?mode=rwc"
  start_shop cached 18601 "$db" "$inventory" "$wallet"
  sleep 2
  memory "shop idle after start" "$cached_pid"
  local token
  token=$(token_at 18601)
  # A first page of 20: the 5 demo products and 35 more.
  for i in $(seq 1 35); do
    curl -fsS -o /dev/null -X POST http://127.0.0.1:18601/api/products \
      -H 'content-type: application/json' -H "authorization: Bearer $token" \
      -H "idempotency-key: seed-$i" \
      -d "{\"name\":\"Catalog item $i\",\"sku\":\"ITEM-$i\",\"price\":{\"amount_minor\":$((500 + i)),\"currency\":\"EUR\"},\"stock\":10}"
  done
  start_shop uncached 18602 "$db" "$inventory" "$wallet" SHOP_CACHE__ENABLED=false
  start_bare bare 18603 "$db"
  local id
  id=$(curl -fsS 'http://127.0.0.1:18603/api/products?per_page=1' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["items"][0]["id"])')
  for path in "/api/products/$id" "/api/products"; do
    local label=product
    [ "$path" = /api/products ] && label="catalog page"
    for connections in 16 64; do
      for round in $(seq 1 "$rounds"); do
        measure "read $label" bare "$connections" "http://127.0.0.1:18603$path"
        measure "read $label" "shop, cache off" "$connections" "http://127.0.0.1:18602$path"
        measure "read $label" "shop, cache on" "$connections" "http://127.0.0.1:18601$path"
      done
    done
  done
  memory "shop (cache on) after the read loads" "$cached_pid"
  memory "shop (cache off) after the read loads" "$uncached_pid"
  stop "$cached_pid"
  stop "$uncached_pid"
  stop "$bare_pid"
}

# --- writes -----------------------------------------------------------------
# products_file PORT: every product's id and version, as the price changes
# start from them.
products_file() {
  local file=$work/products.txt
  python3 - "$1" >"$file" <<'PY'
import json, sys, urllib.request
page, seen = 1, 0
while True:
    url = f"http://127.0.0.1:{sys.argv[1]}/api/products?per_page=100&page={page}"
    listing = json.load(urllib.request.urlopen(url))
    for item in listing["items"]:
        print(item["id"], item["version"])
    seen += len(listing["items"])
    if not listing["items"] or seen >= listing["total"]:
        break
    page += 1
PY
  echo "$file"
}

writes() {
  local engine=$1 db inventory wallet
  if [ "$engine" = sqlite ]; then
    local dir=$work/writes
    mkdir -p "$dir"
    db="sqlite://$dir/shop.db?mode=rwc"
    inventory="sqlite://$dir/inventory.db?mode=rwc"
    wallet="sqlite://$dir/wallet.db?mode=rwc"
  else
    local suffix
    suffix=$(date +%s)_$$
    for part in main inventory wallet; do
      pg_databases+=("bench_http_${part}_$suffix")
      psql -q "$pg_admin_url" -c "CREATE DATABASE \"bench_http_${part}_$suffix\"" >/dev/null
    done
    db="$pg_base/bench_http_main_$suffix"
    inventory="$pg_base/bench_http_inventory_$suffix"
    wallet="$pg_base/bench_http_wallet_$suffix"
  fi
  start_shop writer 18611 "$db" "$inventory" "$wallet"
  start_bare barewriter 18612 "$db"
  for connections in 16 64; do
    for round in $(seq 1 "$rounds"); do
      local run="${engine:0:1}${connections}r${round}"
      measure "create ($engine)" bare "$connections" http://127.0.0.1:18612 \
        bench/http/create.lua "${run}b"
      TOKEN=$(token_at 18611) measure "create ($engine)" shop "$connections" http://127.0.0.1:18611 \
        bench/http/create.lua "${run}s"
      PRODUCTS=$(products_file 18612) THREADS=$threads \
        measure "price change ($engine)" bare "$connections" http://127.0.0.1:18612 \
        bench/http/price.lua
      PRODUCTS=$(products_file 18612) THREADS=$threads TOKEN=$(token_at 18611) \
        measure "price change ($engine)" shop "$connections" http://127.0.0.1:18611 \
        bench/http/price.lua
    done
  done
  memory "shop after the $engine write loads" "$writer_pid"
  stop "$writer_pid"
  stop "$barewriter_pid"
}

printf 'section\tcase\tconnections\trequests/s\tp50 ms\tp99 ms\tnon-2xx\tsocket errors\n' >"$results"
wanted() { case " $sections " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if wanted reads; then reads; fi
if wanted writes || wanted sqlite-writes; then writes sqlite; fi
if wanted writes || wanted postgres-writes; then
  if [ -n "${STRATA_TEST_POSTGRES_URL:-}" ]; then
    pg_admin_url=$STRATA_TEST_POSTGRES_URL
    pg_base=${STRATA_TEST_POSTGRES_URL%/*}
    writes postgres
  else
    echo "PostgreSQL writes skipped: set STRATA_TEST_POSTGRES_URL to measure them"
  fi
fi

python3 - "$results" "$profile" "$seconds" "$rounds" <<'PY'
import statistics, sys
from collections import defaultdict
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])][1:]
runs, memory = defaultdict(list), []
for row in rows:
    if row[0] == "memory":
        memory.append((row[1], int(row[2])))
    else:
        runs[(row[0], row[1], int(row[2]))].append(row)
print(f"\n{sys.argv[2]} build, {sys.argv[4]} round(s) of {sys.argv[3]} s per case, median per case\n")
print("| measurement | connections | case | requests/s | p50 ms | p99 ms | throughput ÷ bare | p99 ÷ bare | non-2xx | socket errors |")
print("|---|---|---|---|---|---|---|---|---|---|")
failed = False
for (section, case, connections), group in runs.items():
    rps = statistics.median(float(r[3]) for r in group)
    p50 = statistics.median(float(r[4]) for r in group)
    p99 = statistics.median(float(r[5]) for r in group)
    bad = sum(int(r[6]) for r in group)
    failed |= bad > 0
    base = runs.get((section, "bare", connections))
    base_rps = statistics.median(float(r[3]) for r in base)
    base_p99 = statistics.median(float(r[5]) for r in base)
    print(f"| {section} | {connections} | {case} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | "
          f"{rps / base_rps:.2f} | {p99 / base_p99:.2f} | {bad} | {'; '.join(r[7] for r in group if r[7]) or '—'} |")
print("\n| shop process | resident memory |\n|---|---|")
for label, kb in memory:
    print(f"| {label} | {kb / 1024:.1f} MB |")
if failed:
    print("\nsome requests were answered neither 2xx nor 3xx", file=sys.stderr)
    sys.exit(1)
PY

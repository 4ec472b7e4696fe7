#!/usr/bin/env bash
# Schemathesis against the sample shop's own OpenAPI document, as an
# administrator and as a customer, with every check on: no 5xx, every response
# as documented, no schema-valid request refused, no schema-violating request
# accepted, stateful links followed.
#
#   bench/openapi-fuzz.sh              # the long run: 300 examples per operation
#   bench/openapi-fuzz.sh --examples 25  # the short run CI makes
#   FUZZ_SEED=123 bench/openapi-fuzz.sh  # replay a run
#
# Starts the shop (debug build) on a fresh SQLite file with the request limit
# switched off; needs `st` (pip install schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."

examples=300
while [ $# -gt 0 ]; do
  case "$1" in
    --examples) examples=$2; shift 2 ;;
    *) echo "usage: $0 [--examples N]" >&2; exit 2 ;;
  esac
done

command -v st >/dev/null || { echo "schemathesis is needed: pip install schemathesis" >&2; exit 1; }
cargo build -p shop-app-api --locked

work=$(mktemp -d)
port=${FUZZ_PORT:-18484}
admin_email=admin@fuzz.test
admin_password="a password for the fuzzing admin"
SHOP_ENV=development \
SHOP_DATABASE_URL="sqlite://$work/shop.db?mode=rwc" \
SHOP_API_ADDR=127.0.0.1:$port SHOP_WEB_ADDR=127.0.0.1:0 \
SHOP_ADMIN_EMAIL=$admin_email SHOP_ADMIN_PASSWORD="$admin_password" \
SHOP_HTTP__CLIENT_LIMIT__ENABLED=false \
NO_COLOR=1 \
  target/debug/shop >"$work/shop.log" 2>&1 &
shop=$!
trap 'kill "$shop" 2>/dev/null || true; wait "$shop" 2>/dev/null || true; rm -rf "$work"' EXIT
base=http://127.0.0.1:$port
for _ in $(seq 1 60); do curl -fsS "$base/health/ready" >/dev/null 2>&1 && break; sleep 1; done

token_of() {
  curl -fsS -X POST "$base/api/auth/sign-in" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
curl -fsS -X POST "$base/api/auth/register" -H 'content-type: application/json' \
  -d '{"email":"customer@fuzz.test","password":"a password for the fuzzing customer"}' >/dev/null

status=0
for who in admin customer; do
  if [ "$who" = admin ]; then
    token=$(token_of "$admin_email" "$admin_password")
  else
    token=$(token_of customer@fuzz.test "a password for the fuzzing customer")
  fi
  echo "==> schemathesis as $who, $examples examples per operation"
  st run "$base/openapi.json" \
    -H "Authorization: Bearer $token" \
    --checks all \
    --max-examples "$examples" \
    --workers 1 \
    --no-color \
    ${FUZZ_SEED:+--seed "$FUZZ_SEED"} | tee "$work/st-$who.log" || status=1
  generated=$(grep -Eo '[0-9]+ generated' "$work/st-$who.log" | tail -n1 | cut -d' ' -f1)
  echo "$who: ${generated:-0} requests generated"
done

if grep -q 'status=5[0-9][0-9]' "$work/shop.log"; then
  echo "the shop answered 5xx:" >&2
  grep 'status=5[0-9][0-9]' "$work/shop.log" >&2
  status=1
fi
exit $status

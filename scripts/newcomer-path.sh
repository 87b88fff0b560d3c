#!/usr/bin/env bash
# The newcomer's path of the README, run by CI: no database server, no Stripe account. Start Paywire on
# embedded PostgreSQL, simulate a subscription lifecycle, and read the state back over the admin API.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATA_DIR="$(mktemp -d)"
export PORT="${NEWCOMER_PORT:-3917}"
unset DATABASE_URL TEST_DATABASE_URL
export CATALOG_FILE=examples/catalog.yaml

if curl -fsS "http://127.0.0.1:$PORT/health/live" > /dev/null 2>&1; then
  echo "port $PORT is already taken; set NEWCOMER_PORT" >&2
  exit 1
fi
# Its own process group, so that stopping it stops node too, not just npm.
set -m
npm start > "$DATA_DIR/server.log" 2>&1 &
server=$!
set +m
trap 'kill -- -$server 2>/dev/null || true; rm -rf "$DATA_DIR"' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/health/live" > /dev/null 2>&1 && break
  sleep 1
done
grep -q "stripe listen --forward-to localhost:$PORT/webhooks/stripe" "$DATA_DIR/server.log"

out=$(npm run --silent simulate -- --scenario purchase --delay 0)
echo "$out"
customer=$(echo "$out" | sed -n 's/^customers: \(cus_[A-Za-z0-9]*\).*/\1/p')
key=$(node -e "console.log(JSON.parse(require('fs').readFileSync(process.env.DATA_DIR + '/secrets.json', 'utf8')).ADMIN_API_KEY)")
for _ in $(seq 1 50); do
  state=$(curl -fsS -H "Authorization: Bearer $key" "http://127.0.0.1:$PORT/admin/customers/$customer" || true)
  echo "$state" | grep -q '"status":"refunded"' && break
  sleep 0.2
done
echo "$state"
echo "$state" | grep -q '"status":"refunded"'
curl -fsS "http://127.0.0.1:$PORT/demo?customer=$customer" | grep -q "Paywire: live billing state"
echo "newcomer path: ok"

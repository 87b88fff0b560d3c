#!/usr/bin/env bash
# The newcomer's path, run by CI: a fresh clone of the commit under test, no database server, no Stripe
# account, and the README's own commands, word for word (each is looked up in the README first, so the two
# cannot drift apart). Install, start on embedded PostgreSQL, simulate a subscription lifecycle, read the
# state back over the admin API, open the demo page.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
commit="$(git -C "$repo" rev-parse HEAD)"
work="$(mktemp -d)"
export PORT="${NEWCOMER_PORT:-3917}"
unset DATABASE_URL TEST_DATABASE_URL DATA_DIR

readme_command() {
  grep -qF -- "$1" "$repo/README.md" || { echo "the README no longer says: $1" >&2; exit 1; }
  echo "\$ $1"
}

git clone --quiet --no-checkout "$repo" "$work/paywire"
cd "$work/paywire"
git checkout --quiet "$commit"

if curl -fsS "http://127.0.0.1:$PORT/health/live" > /dev/null 2>&1; then
  echo "port $PORT is already taken; set NEWCOMER_PORT" >&2
  exit 1
fi

install='npm ci'
readme_command "$install && npm start"
$install 2>&1 | tee "$work/install.log"
if grep -q EBADENGINE "$work/install.log"; then
  echo "npm ci warned about engines on $(node --version)" >&2
  exit 1
fi

start='CATALOG_FILE=examples/catalog.yaml npm start'
readme_command "$start"
# Its own process group, so that stopping it stops node too, not just npm.
set -m
bash -c "$start" > "$work/server.log" 2>&1 &
server=$!
set +m
trap 'kill -- -$server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/health/live" > /dev/null 2>&1 && break
  sleep 1
done
grep -q "stripe listen --forward-to localhost:$PORT/webhooks/stripe" "$work/server.log"

simulate='npm run simulate -- --scenario lifecycle'
readme_command "$simulate"
out=$(bash -c "$simulate")
echo "$out"
customer=$(echo "$out" | sed -n 's/^customers: \(cus_[A-Za-z0-9]*\).*/\1/p')
key=$(node -e "console.log(JSON.parse(require('fs').readFileSync('.paywire/secrets.json', 'utf8')).ADMIN_API_KEY)")
for _ in $(seq 1 50); do
  state=$(curl -fsS -H "Authorization: Bearer $key" "http://127.0.0.1:$PORT/admin/customers/$customer" || true)
  echo "$state" | grep -q '"status":"canceled"' && break
  sleep 0.2
done
echo "$state"
echo "$state" | grep -q '"status":"canceled"'
curl -fsS "http://127.0.0.1:$PORT/demo?customer=$customer" | grep -q "Paywire: live billing state"
echo "newcomer path: ok (fresh clone of $commit)"

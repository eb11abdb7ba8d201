#!/usr/bin/env bash
# The coordinator workspace in a real browser: Debian's Chromium driven by
# playwright-core (npm), each page checked by axe-core (npm), against a
# real observer-server on loopback and a real phone (the `observer` desktop
# client, the core's own sync). Screenshots at 1366x900 and 390x844 go to
# target/browser-screenshots/ (BROWSER_SHOTS to change it).
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ ! -x /usr/bin/chromium ]; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
(cd tests/browser && npm ci --no-fund --no-audit --silent)

cargo build -q -p observer-cli -p observer-server
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug"
shots="${BROWSER_SHOTS:-$PWD/target/browser-screenshots}"
mkdir -p "$shots"
work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export OBSERVER_SERVER_KEY_FILE="$work/server.key"
srv() { "$bin/observer-server" --data "$work/server" "$@"; }
srv init --url "https://127.0.0.1:$port" --org browser-test >/dev/null
printf 'station,name,region,district,address,registered_voters,latitude,longitude\nKZ-ALA-0042,School 42,Almaty,Medeu,Abay Ave 1,2000,43.2389,76.8897\nKZ-ALA-0043,School 43,Almaty,Bostandyk,Timiryazev St 5,1500,43.2220,76.9120\nKZ-AST-0001,Gymnasium 1,Astana,Esil,Mangilik El 10,1200,51.1282,71.4304\n' >"$work/stations.csv"
srv stations import "$work/stations.csv" >/dev/null
srv pvt draw --size 3 --seed 'browser test' >/dev/null
printf 'correct horse battery staple\n' >"$work/password"
for who in aigerim:admin saule:supervisor dana:verifier erlan:analyst; do
    srv users add "${who%%:*}" --role "${who##*:}" --password-file "$work/password" >/dev/null
done
srv users add nurlan --role coordinator --region Almaty --password-file "$work/password" >/dev/null
# The workbook an admin uploads: the shipped counting form as XLSForm, its
# version raised as a coordinator editing it in a spreadsheet would
# (openpyxl, from PyPI, as pyxform brings it).
python3 -c 'import openpyxl' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check 'openpyxl==3.1.5'
srv forms export counting --output "$work/counting.xlsx" >/dev/null
python3 - "$work/counting.xlsx" "$work/counting-v2.xlsx" <<'PY'
import sys, openpyxl
book = openpyxl.load_workbook(sys.argv[1])
settings = book["settings"]
column = [c.value for c in settings[1]].index("version") + 1
settings.cell(row=2, column=column).value = "2"
book.save(sys.argv[2])
PY
srv serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), timeout=1).close()" 2>/dev/null; then break; fi
    sleep 0.1
done

if ! OBSERVER_URL="https://127.0.0.1:$port" OBSERVER_PASSWORD='correct horse battery staple' \
    OBSERVER_CLI="$bin/observer" OBSERVER_SERVER_CLI="$bin/observer-server" OBSERVER_SERVER_DATA="$work/server" \
    OBSERVER_PHONE="$work/phone" OBSERVER_SHOTS="$shots" OBSERVER_WORKBOOK="$work/counting-v2.xlsx" \
    node tests/browser/workspace.mjs; then
    echo "--- serve.log" >&2
    tail -n 40 "$work/serve.log" >&2
    exit 1
fi

#!/usr/bin/env bash
# Interception with a real tool (issue 6). A state that pushes its own root
# certificate and takes over the route to the coordinator is played by
# mitmproxy: its CA goes into this machine's trust store, and it answers at
# the coordinator's address as a TLS-intercepting reverse proxy. Ordinary
# clients (curl) accept it. Observer must not: sync fails with the identity
# error, nothing is marked delivered, and mitmproxy's flow log holds no
# payload. Back on the real route, the same records deliver.
#
# Runs on loopback only. Needs root (or sudo) to add and remove the CA.
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
fail() {
    echo "interception: FAIL: $*" >&2
    for f in "$work"/*.log "$work"/*.err; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
    exit 1
}

scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
if [ ! -x "$scripts/mitmdump" ]; then
    python3 -m pip install -q --disable-pip-version-check mitmproxy==11.0.2
fi
mitmdump="$scripts/mitmdump"
[ -x "$mitmdump" ] || mitmdump="$(command -v mitmdump)"
cargo build -q -p observer-cli -p observer-server
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug"

work="$(mktemp -d)"
ca_dest=/usr/local/share/ca-certificates/observer-test-mitmproxy.crt
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -f "$ca_dest" ]; then
        as_root rm -f "$ca_dest"
        as_root update-ca-certificates --fresh >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "nothing listens on port $1"
}
export OBSERVER_SERVER_KEY_FILE="$work/server.key"
server() { "$bin/observer-server" --data "$work/server" "$@"; }
phone() { "$bin/observer" --data "$work/phone" "$@"; }
serve_on() {
    # The binary itself in the background (not a function's subshell), so
    # that killing $server_pid stops the server.
    "$bin/observer-server" --data "$work/server" serve --listen "127.0.0.1:$1" >>"$work/server.log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    wait_port "$1"
}

# 1. mitmproxy's CA, trusted by the machine.
confdir="$work/mitm-conf"
"$mitmdump" --set confdir="$confdir" --listen-host 127.0.0.1 --listen-port "$(port)" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -f "$confdir/mitmproxy-ca-cert.pem" ] && break; sleep 0.1; done
[ -f "$confdir/mitmproxy-ca-cert.pem" ] || fail "mitmproxy made no CA"
as_root cp "$confdir/mitmproxy-ca-cert.pem" "$ca_dest"
as_root update-ca-certificates >/dev/null 2>&1

# 2. A coordinator, an enrolled phone, two records (one of a sealed form).
public="$(port)"
hidden="$(port)"
server init --url "https://127.0.0.1:$public" --org interception-test >/dev/null
serve_on "$public"
phone enroll "$(server enroll --station KZ-0001 --text | tr -d '[:space:]')" >/dev/null
marker="INTERCEPT-MARKER-7c2e"
phone record --station KZ-0001 --form voting --kind checklist \
    --payload "{\"note\": \"$marker checklist\"}" >/dev/null
phone record --station KZ-0001 --form incident --kind incident \
    --payload "{\"type\": \"ballot_stuffing\", \"time\": \"11:40\", \"note\": \"$marker incident\"}" >/dev/null

# 3. The route is taken over: the coordinator moves behind mitmproxy, which
# now answers at the address the phone knows.
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
serve_on "$hidden"
"$mitmdump" --set confdir="$confdir" --mode "reverse:https://127.0.0.1:$hidden" \
    --listen-host 127.0.0.1 --listen-port "$public" --set ssl_insecure=true \
    -w "$work/flows" >"$work/mitm.log" 2>&1 &
mitm_pid=$!
pids+=("$mitm_pid")
wait_port "$public"
curl -sS "https://127.0.0.1:$public/healthz" >"$work/curl.log" 2>&1 && grep -q '"ok"' "$work/curl.log" \
    || fail "curl with the system trust store should accept the interceptor"

# 4. Observer refuses it.
if phone sync --attempts 1 >"$work/sync.out" 2>"$work/sync.err"; then
    fail "sync succeeded through the interceptor"
fi
grep -q "identity could not be confirmed" "$work/sync.err" \
    || fail "expected the identity error, got: $(cat "$work/sync.err")"
status="$(phone status --json)"
python3 - "$status" <<'PY' || fail "records were marked delivered: $status"
import json, sys
c = json.loads(sys.argv[1])["counts"]
sys.exit(0 if (c["delivered"], c["pending"]) == (0, 2) else 1)
PY

# 5. Nothing readable crossed: mitmproxy's flow log and its own log.
kill -INT "$mitm_pid"; wait "$mitm_pid" 2>/dev/null || true
"$mitmdump" -n -r "$work/flows" --flow-detail 4 >"$work/flows.txt" 2>&1 || true
grep -q "healthz" "$work/flows.txt" || fail "the flow log did not record curl's request"
grep -qi "client TLS handshake failed" "$work/mitm.log" \
    || fail "mitmproxy did not see the phone's handshake (was it in the path?)"
if grep -a -q "$marker" "$work/flows" "$work/flows.txt" "$work/mitm.log"; then
    fail "the payload is readable in mitmproxy's logs"
fi

# 6. Back on the real route, the same records deliver.
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
serve_on "$public"
phone sync --attempts 1 >/dev/null
delivered="$(phone status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["delivered"])')"
[ "$delivered" = 2 ] || fail "after the interception, $delivered of 2 records delivered"
echo "interception: mitmproxy's certificate refused by the pin; nothing delivered through it; no payload in its logs; delivered on the real route"

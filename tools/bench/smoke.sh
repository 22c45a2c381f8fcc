#!/usr/bin/env bash
# Smoke test of ringcast-bench against the echo example and ringcast-hub:
# every scenario for about two seconds, each result checked (JSON fields
# present, errors == missing == reordered == 0, messages > 0), three of
# them over wss:// (echo, hub broadcast, connections), a broadcast through
# a hub with history, and examples/history_bench (publish, then replay).
#
#     tools/bench/smoke.sh            # builds first
#     tools/bench/smoke.sh --no-build
#
# Results: target/bench-smoke/*.json (and latency.svg); server logs beside
# them. Exits non-zero on the first failure, with a line saying which.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/target/bench-smoke"
BIN="$ROOT/target/release"
BENCH="$BIN/ringcast-bench"

fail() {
    echo "smoke: FAIL: $*" >&2
    exit 1
}

if [[ "${1:-}" != "--no-build" ]]; then
    (cd "$ROOT" && cargo build --release -q -p ringcast-bench -p ringcast-hub) || fail "build of ringcast-bench and ringcast-hub"
    (cd "$ROOT" && cargo build --release -q -p ringcast --example echo) || fail "build of examples/echo"
    (cd "$ROOT" && cargo build --release -q -p ringcast-hub --example history_bench) || fail "build of history_bench"
fi
for bin in "$BENCH" "$BIN/ringcast-hub" "$BIN/examples/echo" "$BIN/examples/history_bench"; do
    [[ -x "$bin" ]] || fail "missing $bin"
done

rm -rf "$OUT"
mkdir -p "$OUT"
# Both servers and the connection scenario need file descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    local port=$1 pid=$2 name=$3
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || fail "$name exited at start (see $OUT/$name.log)"
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2).close()" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    fail "$name does not listen on port $port"
}

PIDS=()
stop_servers() {
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_servers EXIT

# A certificate for the wss:// scenarios (an end entity: rustls checks).
"$ROOT/tools/tls_cert.sh" "$OUT" || fail "no certificate (tools/tls_cert.sh)"
TLS=(--tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem")

ECHO_PORT=$(free_port)
"$BIN/examples/echo" --listen "127.0.0.1:$ECHO_PORT" --shards 2 >"$OUT/echo.log" 2>&1 &
PIDS+=($!)
wait_port "$ECHO_PORT" "${PIDS[-1]}" echo
TLS_ECHO_PORT=$(free_port)
"$BIN/examples/echo" --listen "127.0.0.1:$TLS_ECHO_PORT" --shards 2 "${TLS[@]}" >"$OUT/echo-tls.log" 2>&1 &
PIDS+=($!)
wait_port "$TLS_ECHO_PORT" "${PIDS[-1]}" echo-tls
HUB_PORT=$(free_port)
HUB_TLS_PORT=$(free_port)
# The scenarios load the hub from one address as fast as they can: its
# per-connection publish rate and per-address limits are off. Compression
# is on: only the subscribers of broadcast-deflate offer it. TLS is served
# on a second address.
"$BIN/ringcast-hub" --listen "127.0.0.1:$HUB_PORT" --shards 2 --max-publish-rate 0 --max-connections-per-ip 0 --compression \
  "${TLS[@]}" --tls-listen "127.0.0.1:$HUB_TLS_PORT" >"$OUT/hub.log" 2>&1 &
PIDS+=($!)
wait_port "$HUB_PORT" "${PIDS[-1]}" hub
wait_port "$HUB_TLS_PORT" "${PIDS[-1]}" hub
HISTORY_PORT=$(free_port)
"$BIN/ringcast-hub" --listen "127.0.0.1:$HISTORY_PORT" --shards 2 --max-publish-rate 0 --max-connections-per-ip 0 \
  --history-size 20000 >"$OUT/hub-history.log" 2>&1 &
PIDS+=($!)
wait_port "$HISTORY_PORT" "${PIDS[-1]}" hub-history

ECHO_URL="ws://127.0.0.1:$ECHO_PORT/"
TLS_ECHO_URL="wss://localhost:$TLS_ECHO_PORT/"
HUB="ws://127.0.0.1:$HUB_PORT/topics"
TLS_HUB="wss://localhost:$HUB_TLS_PORT/topics"
CA=(--tls-ca "$OUT/cert.pem")
COMMON=(--duration 2 --warmup 0.5)

# name, then the ringcast-bench arguments.
run() {
    local name=$1
    shift
    local started=$SECONDS
    if ! "$BENCH" "$@" --json "$OUT/$name.json" >"$OUT/$name.out" 2>"$OUT/$name.err"; then
        cat "$OUT/$name.out" "$OUT/$name.err" >&2
        fail "$name: ringcast-bench exited with an error: ringcast-bench $*"
    fi
    local summary
    summary=$(python3 - "$OUT/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
extra = "".join(f" {k}={r[k]}" for k in ("missing", "reordered", "connected") if k in r)
print(f"{r['msgs_per_sec']:.0f} msgs/s, p99 {r['latency_us']['p99']:.0f} us, errors={r['errors']}{extra}")
PY
)
    echo "smoke: $name ok ($((SECONDS - started)) s): $summary"
}

run echo-binary-k1 echo --url "$ECHO_URL" --connections 50 --size 64 "${COMMON[@]}" --plot "$OUT/latency.svg"
run echo-text-k1 echo --url "$ECHO_URL" --connections 50 --size 64 --text "${COMMON[@]}"
run echo-binary-k4 echo --url "$ECHO_URL" --connections 50 --size 1000 --in-flight 4 --threads 2 "${COMMON[@]}"
run echo-text-k4 echo --url "$ECHO_URL" --connections 50 --size 20 --text --in-flight 4 "${COMMON[@]}"
run rate rate --url "$ECHO_URL" --connections 50 --size 64 --rate 20000 "${COMMON[@]}"
run fanout fanout --url "$HUB/smoke-fanout?echo=1" --connections 50 --size 32 "${COMMON[@]}"
run broadcast-ws broadcast --url "$HUB/smoke-ws" --subscribers 200 --publishers 2 --rate 200 --size 64 "${COMMON[@]}"
# --http-early-close: each publisher hangs up as soon as its answer is in,
# like curl; before the linger fix this cut other connections (see
# crates/ringcast/tests/regress_shutdown_hits_reused_fd.rs).
run broadcast-http broadcast --url "$HUB/smoke-http" --subscribers 200 --publishers 2 --via http --rate 400 \
    --size 64 --text --http-early-close "${COMMON[@]}"
run broadcast-deflate broadcast --url "$HUB/smoke-deflate" --subscribers 100 --rate 100 --size 1024 --text \
    --filler json --deflate "${COMMON[@]}"
run connections connections --url "$ECHO_URL" --connections 4000 --sources 2 --hold 2 --ping-interval 0.5
# wss://: records spanning reads (16 KiB messages), the hub's fan-out
# encrypted per subscriber, and many TLS handshakes at once.
run echo-wss echo --url "$TLS_ECHO_URL" "${CA[@]}" --connections 50 --size 16384 --in-flight 4 "${COMMON[@]}"
run broadcast-wss broadcast --url "$TLS_HUB/smoke-wss" "${CA[@]}" --subscribers 200 --publishers 2 --rate 200 \
    --size 64 "${COMMON[@]}"
run connections-wss connections --url "$TLS_ECHO_URL" "${CA[@]}" --connections 500 --hold 2 --ping-interval 0.5
# History on: every publish sequenced through the shards' mailboxes.
run broadcast-history broadcast --url "ws://127.0.0.1:$HISTORY_PORT/topics/smoke-history" --subscribers 200 \
    --publishers 2 --rate 200 --size 64 "${COMMON[@]}"
"$BIN/examples/history_bench" "127.0.0.1:$HISTORY_PORT" smoke-replay 10000 100 >"$OUT/history-bench.txt" \
    || fail "history_bench (see $OUT/history-bench.txt)"
python3 - "$OUT/history-bench.txt" <<'PY' || fail "history_bench: a figure is missing or zero"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["messages"] == 10000 and all(r[k] > 0 for k in ("publish_per_sec", "replay_per_sec", "replay_mb_per_sec")), r
print(f"smoke: history_bench ok: {r['publish_per_sec']:.0f} publishes/s, {r['replay_per_sec']:.0f} replayed/s")
PY

python3 - "$OUT" <<'EOF' || fail "a result did not pass its checks (see above)"
import json, os, sys, xml.dom.minidom

out = sys.argv[1]
required = ["scenario", "url", "connections", "size", "duration_s", "messages", "msgs_per_sec",
            "bytes_per_sec", "errors", "latency_us"]
extra = {
    "fanout": ["deliveries", "deliveries_per_sec", "publishes", "missing", "reordered"],
    "broadcast": ["deliveries", "deliveries_per_sec", "publishes", "missing", "reordered"],
    "rate": ["rate_achieved"],
    "connections": ["connects_per_sec", "connected"],
}
bad = []
files = sorted(f for f in os.listdir(out) if f.endswith(".json"))
for name in files:
    r = json.load(open(os.path.join(out, name)))
    for key in required + extra.get(r.get("scenario"), []):
        if key not in r:
            bad.append(f"{name}: no field {key}")
    for key in ["p50", "p90", "p99", "p999", "p9999", "max"]:
        if not isinstance(r.get("latency_us", {}).get(key), (int, float)):
            bad.append(f"{name}: latency_us.{key} is not a number")
    for key in ["errors", "missing", "reordered"]:
        if r.get(key, 0) != 0:
            bad.append(f"{name}: {key} = {r[key]}")
    if not r.get("messages", 0) > 0:
        bad.append(f"{name}: no messages")
    if r.get("scenario") == "connections" and r.get("connected") != r.get("connections"):
        bad.append(f"{name}: {r.get('connected')} of {r.get('connections')} connected")
    if name == "broadcast-deflate.json":
        if r.get("deflate_negotiated") != r.get("subscribers"):
            bad.append(f"{name}: {r.get('deflate_negotiated')} of {r.get('subscribers')} subscribers negotiated deflate")
        if not 0 < r.get("wire_bytes_per_delivery", 0) < r["size"] / 2:
            bad.append(f"{name}: {r.get('wire_bytes_per_delivery')} bytes on the wire per {r['size']}-byte delivery")
    if name.endswith("-wss.json") and not r.get("url", "").startswith("wss://"):
        bad.append(f"{name}: not over wss:// ({r.get('url')})")
if len(files) != 14:
    bad.append(f"{len(files)} result files instead of 14")
try:
    xml.dom.minidom.parse(os.path.join(out, "latency.svg"))
except Exception as e:
    bad.append(f"latency.svg: {e}")
for line in bad:
    print(f"smoke: {line}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
echo "smoke: all $(ls "$OUT"/*.json | wc -l) scenarios passed; results in $OUT"

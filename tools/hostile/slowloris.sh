#!/usr/bin/env bash
# slowhttptest's slowloris mode against examples/echo while a normal
# WebSocket client keeps echoing: every probe must succeed during the
# attack, and the attackers' connections must be gone soon after the
# handshake timeout (3 s here). Called by tools/test.sh.
#
#   tools/hostile/slowloris.sh        over ws:// and http://
#   tools/hostile/slowloris.sh tls    over wss:// and https:// (the attackers
#                                     finish the TLS handshake, then drip the
#                                     request), then a TLS 1.2 renegotiation
#                                     attempt, which must be refused
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-plain}
work="$PWD/target/hostile/$mode"
mkdir -p "$work"
command -v slowhttptest >/dev/null 2>&1 ||
  apt-get install -y -qq slowhttptest >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq slowhttptest >/dev/null; }
python3 -c 'import websockets' 2>/dev/null || python3 -m pip install -q 'websockets==17.4'
cargo build --release -q -p ringcast --example echo

port=9301
scheme=ws
tls_args=()
if [ "$mode" = tls ]; then
  port=9302
  scheme=wss
  tools/tls_cert.sh "$work"
  tls_args=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
fi
target/release/examples/echo --listen "127.0.0.1:$port" --shards 1 \
  --handshake-timeout-ms 3000 "${tls_args[@]}" > "$work/echo.log" 2>&1 &
echo_pid=$!
trap 'kill $echo_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$echo_pid/status"; }
: > "$work/rss.log"
rss_before=$(rss)
peak=$rss_before
( while kill -0 "$echo_pid" 2>/dev/null; do rss >> "$work/rss.log" 2>/dev/null || true; sleep 0.2; done ) &
sampler=$!
# 2000 connections sending a header line every 2 s for 15 s.
http=http
[ "$mode" = tls ] && http=https
slowhttptest -H -c 2000 -r 500 -i 2 -l 15 -t GET -u "$http://127.0.0.1:$port/" -p 2 -o "$work/slowhttptest" \
  > "$work/slowhttptest.log" 2>&1 &
attack_pid=$!
# probe SECONDS: a WebSocket client echoes a message every half second.
probe() {
  python3 - "$scheme" "$port" "$1" "$work/cert.pem" <<'PY'
import asyncio, ssl, sys, time
import websockets

async def main(scheme, port, seconds, ca):
    url = f"{scheme}://127.0.0.1:{port}/"
    tls = ssl.create_default_context(cafile=ca) if scheme == "wss" else None
    end = time.monotonic() + seconds
    probes = 0
    while True:
        async with websockets.connect(url, open_timeout=3, ssl=tls) as ws:
            await ws.send("probe")
            assert await asyncio.wait_for(ws.recv(), 3) == "probe"
        probes += 1
        if time.monotonic() >= end:
            break
        await asyncio.sleep(0.5)
    print(f"slowloris: {probes} probes echoed over {scheme}://")

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
PY
}
sleep 2 # let the attack ramp up
probe 12
wait "$attack_pid" || true
# slowhttptest's last status block: how many it held, how many we closed.
sed 's/\x1b\[[0-9;]*m//g' "$work/slowhttptest.log" | grep -E '^(connected|closed|service available|Exit status)' \
  | tail -n4 | sed 's/^/slowhttptest: /' | tr -s ' ' || true
kill "$sampler" 2>/dev/null || true
peak=$(sort -n "$work/rss.log" | tail -n1)
growth=$(( (peak - rss_before) / 1024 ))
echo "slowloris: server RSS $rss_before KiB before, $peak KiB at the peak of the attack (+$growth MiB)"
if [ "$growth" -gt 32 ]; then
  echo "slowloris: memory grew by more than 32 MiB" >&2
  exit 1
fi
# The attackers have stopped sending; whatever they left must be closed by
# the handshake timeout.
sleep 4
left=$(ss -Htn state established "( sport = :$port )" | wc -l)
if [ "$left" -gt 0 ]; then
  echo "slowloris: $left connections still open 4 s after the attack" >&2
  exit 1
fi
echo "slowloris: no connection left after the attack"

if [ "$mode" = tls ]; then
  # A TLS 1.2 client asks to renegotiate: rustls refuses (no_renegotiation),
  # and the server goes on serving.
  (sleep 0.5; printf 'R\n'; sleep 1.5) |
    timeout 10 openssl s_client -tls1_2 -connect "127.0.0.1:$port" -servername localhost \
      > "$work/renegotiation.log" 2>&1 || true
  if ! grep -aq "no renegotiation" "$work/renegotiation.log"; then
    echo "renegotiation: not refused as expected (see $work/renegotiation.log)" >&2
    exit 1
  fi
  probe 0
  echo "renegotiation: refused with no_renegotiation; the server still echoes"
fi

#!/usr/bin/env bash
# slowhttptest's slowloris mode against examples/echo while a normal
# WebSocket client keeps echoing: every probe must succeed during the
# attack, and the attackers' connections must be gone soon after the
# handshake timeout (3 s here). Called by tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$PWD/target/hostile"
mkdir -p "$work"
command -v slowhttptest >/dev/null 2>&1 ||
  apt-get install -y -qq slowhttptest >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq slowhttptest >/dev/null; }
python3 -c 'import websockets' 2>/dev/null || python3 -m pip install -q 'websockets==17.4'
cargo build --release -q -p ringcast --example echo

port=9301
target/release/examples/echo --listen "127.0.0.1:$port" --shards 1 \
  --handshake-timeout-ms 3000 > "$work/echo.log" 2>&1 &
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
slowhttptest -H -c 2000 -r 500 -i 2 -l 15 -t GET -u "http://127.0.0.1:$port/" -p 2 -o "$work/slowhttptest" \
  > "$work/slowhttptest.log" 2>&1 &
attack_pid=$!
python3 - "$port" <<'PY'
import asyncio, sys, time
import websockets

async def main(port):
    url = f"ws://127.0.0.1:{port}/"
    end = time.monotonic() + 14
    probes = 0
    await asyncio.sleep(2)  # let the attack ramp up
    while time.monotonic() < end:
        async with websockets.connect(url, open_timeout=3) as ws:
            await ws.send("probe")
            assert await asyncio.wait_for(ws.recv(), 3) == "probe"
        probes += 1
        await asyncio.sleep(0.5)
    print(f"slowloris: {probes} probes echoed during the attack")

asyncio.run(main(int(sys.argv[1])))
PY
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

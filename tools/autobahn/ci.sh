#!/usr/bin/env bash
# Autobahn|Testsuite, gated (see run.sh), with permessage-deflate on:
# against examples/echo --deflate with 1 shard, and with 2 shards over TLS
# (wss://, a certificate made for the run), against
# ringcast-hub --compression (2 shards; a room with ?echo=1 and one member
# is an echo through the pub/sub path, where a publish is compressed once),
# and the fuzzing server against the ringcast client --deflate (client.sh).
# Called by tools/test.sh.
#
#   tools/autobahn/ci.sh            every case up to 8 KiB against all four;
#                                   each large 12.*/13.* case against one
#                                   server, some against the client (below)
#   AUTOBAHN_FULL=1 tools/autobahn/ci.sh    every case against all four
#
# wstest is single-threaded Python and spends ~15 s on each 12.*/13.* case
# of 1000 messages of 16-128 KiB (~18 min per target for the two groups).
# Two suites run at a time (the machine has 2 cores), and in CI the large
# cases are shared out: each runs against one of the three servers (the
# hub takes 12.* and 13.7, echo with 1 shard 13.1-13.3, echo over TLS
# 13.4-13.6), and the client takes 12.* and 13.1. Every other case runs
# against all four. AUTOBAHN_FULL=1 runs every case against all four (done
# before each release).
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 tools/autobahn/gate.py --self-test
tools/autobahn/install.sh >/dev/null
cargo build --release -q -p ringcast --example echo --example autobahn_client
cargo build --release -q -p ringcast-hub --bin ringcast-hub
mkdir -p target/autobahn

plain="1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*"
all="$plain,12.*,13.*"
# Every 12.*/13.* case whose messages are at most 8 KiB: the cases .1-.8
# and .11-.13 of each subgroup (9, 10 and 14-18 send 16-128 KiB).
small=$plain
for group in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
  for n in 1 2 3 4 5 6 7 8 11 12 13; do small="$small,$group.$n"; done
done
# large SUBGROUP...: the large cases of those subgroups.
large() {
  local group n list=""
  for group in "$@"; do
    for n in 9 10 14 15 16 17 18; do list="$list,$group.$n"; done
  done
  printf '%s' "$list"
}
if [ "${AUTOBAHN_FULL:-0}" != 0 ]; then
  hub_cases=$all client_cases=$all echo_1_cases=$all echo_2_cases=$all
else
  hub_cases="$small$(large 12.1 12.2 12.3 12.4 12.5 13.7)"
  client_cases="$small$(large 12.1 12.2 12.3 12.4 12.5 13.1)"
  echo_1_cases="$small$(large 13.1 13.2 13.3)"
  echo_2_cases="$small$(large 13.4 13.5 13.6)"
fi

# A self-signed certificate for the TLS target (wstest does not verify it).
tls=target/autobahn/tls
tools/tls_cert.sh "$tls"

# against NAME SCHEME PORT PATH SIGNAL CASES COMMAND...: start the server,
# wait for its port, run the suite at SCHEME://127.0.0.1:PORT/PATH, stop it
# with SIGNAL.
against() {
  local name=$1 scheme=$2 port=$3 path=$4 signal=$5 cases=$6 status=0
  shift 6
  "$@" > "target/autobahn-$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  tools/autobahn/run.sh "$scheme://127.0.0.1:$port$path" "$name" "$cases" || status=1
  kill "-$signal" "$pid" || status=1
  wait "$pid" || status=1
  return $status
}

# Runs two suites at once, each with its output in a file printed when both
# are done (interleaved tables would be unreadable). Fails if either fails.
pair() {
  local first=$1 second=$2 status=0
  "$first" > target/autobahn/pair-1.log 2>&1 &
  local one=$!
  "$second" > target/autobahn/pair-2.log 2>&1 &
  local two=$!
  wait "$one" || status=1
  wait "$two" || status=1
  cat target/autobahn/pair-1.log target/autobahn/pair-2.log
  return $status
}

# The slow reader (wstest) must not be cut as a slow consumer: a case sends
# up to 1000 x 128 KiB before reading the echoes.
echo_1() {
  against ringcast-echo-1-shard ws 9101 "" INT "$echo_1_cases" \
    target/release/examples/echo --listen 127.0.0.1:9101 --shards 1 --deflate --max-backpressure 268435456
}
echo_2_tls() {
  against ringcast-echo-2-shard-tls wss 9102 "" INT "$echo_2_cases" \
    target/release/examples/echo --listen 127.0.0.1:9102 --shards 2 --deflate --max-backpressure 268435456 \
    --tls-cert "$tls/cert.pem" --tls-key "$tls/key.pem"
}
hub() {
  against ringcast-hub-2-shard ws 9103 "/topics/autobahn?echo=1" TERM "$hub_cases" \
    target/release/ringcast-hub --listen 127.0.0.1:9103 --shards 2 --max-message-size 16MiB --max-publish-rate 0 \
    --max-backpressure 256MiB --compression
}
# The client side: the fuzzing server drives examples/autobahn_client.
client() { tools/autobahn/client.sh 9110 "$client_cases"; }

status=0
pair hub client || status=1
pair echo_1 echo_2_tls || status=1
exit $status

#!/usr/bin/env bash
# Autobahn|Testsuite, gated (see run.sh), with permessage-deflate on:
# against examples/echo --deflate with 1 shard, and with 2 shards over TLS
# (wss://, a certificate made for the run), against
# ringcast-hub --compression (2 shards; a room with ?echo=1 and one member
# is an echo through the pub/sub path, where a publish is compressed once),
# and the fuzzing server against the ringcast client --deflate (client.sh).
# Called by tools/test.sh.
#
#   tools/autobahn/ci.sh            the hub and the client: every case (1.* to
#                                   13.*); the echo servers: 1.* to 10.* and the
#                                   12.*/13.* cases up to 8 KiB (see below)
#   AUTOBAHN_FULL=1 tools/autobahn/ci.sh    every case against all four
#
# wstest is single-threaded Python and spends ~16 s on each 12.*/13.* case
# of 1000 messages of 16-128 KiB (~20 min per target for the two groups):
# two suites run at a time (the machine has 2 cores), and in CI only the hub
# and the client get the large cases. The echo servers' deflate path is the
# per-connection one the hub also takes for context takeover and small
# windows; AUTOBAHN_FULL=1 runs them fully (done before each release).
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
echo_cases=$small
if [ "${AUTOBAHN_FULL:-0}" != 0 ]; then echo_cases=$all; fi

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
  against ringcast-echo-1-shard ws 9101 "" INT "$echo_cases" \
    target/release/examples/echo --listen 127.0.0.1:9101 --shards 1 --deflate --max-backpressure 268435456
}
echo_2_tls() {
  against ringcast-echo-2-shard-tls wss 9102 "" INT "$echo_cases" \
    target/release/examples/echo --listen 127.0.0.1:9102 --shards 2 --deflate --max-backpressure 268435456 \
    --tls-cert "$tls/cert.pem" --tls-key "$tls/key.pem"
}
hub() {
  against ringcast-hub-2-shard ws 9103 "/topics/autobahn?echo=1" TERM "$all" \
    target/release/ringcast-hub --listen 127.0.0.1:9103 --shards 2 --max-message-size 16MiB --max-publish-rate 0 \
    --max-backpressure 256MiB --compression
}
# The client side: the fuzzing server drives examples/autobahn_client.
client() { tools/autobahn/client.sh 9110 "$all"; }

status=0
pair hub client || status=1
pair echo_1 echo_2_tls || status=1
exit $status

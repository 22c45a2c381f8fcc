#!/usr/bin/env bash
# Autobahn|Testsuite against examples/echo with 1 shard and with 2 shards,
# and against ringcast-hub (2 shards; a room with ?echo=1 and one member is
# an echo through the pub/sub path), cases 1.* to 10.*, gated (see run.sh);
# then the fuzzing server against the ringcast client (client.sh).
# Called by tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 tools/autobahn/gate.py --self-test
tools/autobahn/install.sh >/dev/null
cargo build --release -q -p ringcast --example echo
cargo build --release -q -p ringcast-hub --bin ringcast-hub
status=0

# against NAME PORT PATH SIGNAL COMMAND...: start the server, wait for its
# port, run the suite at ws://127.0.0.1:PORT/PATH, stop it with SIGNAL.
against() {
  local name=$1 port=$2 path=$3 signal=$4
  shift 4
  "$@" > "target/autobahn-$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  tools/autobahn/run.sh "ws://127.0.0.1:$port$path" "$name" || status=1
  kill "-$signal" "$pid" || status=1
  wait "$pid" || status=1
}

for shards in 1 2; do
  port=$((9100 + shards))
  against "ringcast-echo-${shards}-shard" "$port" "" INT \
    target/release/examples/echo --listen "127.0.0.1:$port" --shards "$shards"
done
against ringcast-hub-2-shard 9103 "/topics/autobahn?echo=1" TERM \
  target/release/ringcast-hub --listen 127.0.0.1:9103 --shards 2 --max-message-size 16MiB --max-publish-rate 0
# The client side: the fuzzing server drives examples/autobahn_client.
tools/autobahn/client.sh 9110 || status=1
exit $status

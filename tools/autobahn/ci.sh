#!/usr/bin/env bash
# Autobahn|Testsuite against examples/echo with 1 shard and with 2 shards,
# and against ringcast-hub (2 shards; a room with ?echo=1 and one member is
# an echo through the pub/sub path), cases 1.* to 10.*, gated (see run.sh).
# Called by tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 tools/autobahn/gate.py --self-test
tools/autobahn/install.sh >/dev/null
cargo build --release -q -p ringcast --example echo -p ringcast-hub
status=0
for shards in 1 2; do
  port=$((9100 + shards))
  target/release/examples/echo --listen "127.0.0.1:$port" --shards "$shards" > "target/autobahn-echo-$shards.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  tools/autobahn/run.sh "ws://127.0.0.1:$port" "ringcast-echo-${shards}-shard" || status=1
  kill -INT "$pid"
  wait "$pid" || status=1
done
port=9103
target/release/ringcast-hub --listen "127.0.0.1:$port" --shards 2 --max-message-size 16MiB \
  > target/autobahn-hub.log 2>&1 &
pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
tools/autobahn/run.sh "ws://127.0.0.1:$port/topics/autobahn?echo=1" "ringcast-hub-2-shard" || status=1
kill -TERM "$pid"
wait "$pid" || status=1
exit $status

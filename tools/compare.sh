#!/usr/bin/env bash
# Side-by-side benchmark of ringcast against the peer servers of
# benches/peers (fastwebsockets, tokio-tungstenite, tokio-uring with
# ringcast-proto): builds everything in release, then runs
# tools/bench/compare.py, which pins each server to CPU 0 and
# ringcast-bench to CPU 1, interleaves the rounds and writes the medians,
# ratios and an SVG chart into docs/benchmarks.md.
#
#   tools/compare.sh                  # 3 rounds × 5 s per server and case
#   tools/compare.sh --rounds 5 --seconds 10
#   tools/compare.sh --quick --no-docs  # 1 round × 2 s: does everything run?
#
# uWebSockets rows appear when UWS_ECHO / UWS_ROOM name its uws_echo /
# uws_room binaries (built from source with ../shared/bench/uws/README.md);
# without them the script says they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release -q -p ringcast-bench -p ringcast-peers -p ringcast-hub
cargo build --release -q -p ringcast --example echo
exec python3 tools/bench/compare.py "$@"

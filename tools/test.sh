#!/usr/bin/env bash
# The project's test command (README "Run the tests"): installs what the
# checks need, then runs every one of them. CI runs exactly this.
#
#   tools/test.sh               everything (fuzz targets 60 s each)
#   FUZZ_SECONDS=0 tools/test.sh    skip the fuzz runs (quick local loop)
#   AUTOBAHN=0 tools/test.sh        skip Autobahn|Testsuite
#   PEERS=0 tools/test.sh           skip the real peers (Python, Node, Chromium) and slowloris
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds=${FUZZ_SECONDS:-60}

step() { printf '\n== [%ss] %s\n' "$SECONDS" "$*"; }

step "set-up"
if ! command -v cc >/dev/null 2>&1; then
  # libfuzzer-sys and a few -sys crates compile C/C++.
  apt-get update -qq && apt-get install -y -qq build-essential >/dev/null
fi
if [ ! -x /usr/sbin/nats-server ] && ! command -v nats-server >/dev/null 2>&1; then
  # The hub's cluster tests start a real NATS cluster.
  apt-get update -qq && apt-get install -y -qq nats-server >/dev/null
fi
if [ "$fuzz_seconds" != 0 ] && ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# The runtime tests hold a thousand client and server sockets at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open-file limit: $(ulimit -n)"
if [ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" != 0 ]; then
  echo "io_uring is disabled here (kernel.io_uring_disabled); the ringcast runtime tests will fail" >&2
fi
cargo --version

step "format"
cargo fmt --all --check

step "lint"
cargo clippy --workspace --all-targets -- -D warnings

step "layers: no import circle between the files of a crate"
python3 tools/import_cycles.py crates/ringcast-proto crates/ringcast crates/ringcast-hub tools/ringcast-bench

step "docs (every public item documented, no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "packages: cargo package (verified) of the three crates against the newest compatible dependencies, warnings as errors"
tools/package.sh

step "tests (unit, public API, conformance, real peers, benches in test mode)"
mkdir -p target
# tests/examples.rs runs the examples as programs: `--all-targets` builds
# them only as test harnesses, so their binaries are built first.
cargo build -p ringcast --examples
cargo test --workspace --all-targets 2>&1 | tee target/test-output.log
cargo test --workspace --doc 2>&1 | tee -a target/test-output.log

step "kernel TLS (feature ktls, off by default): linted, its unit tests, the TLS tests with the hand-over tried (this machine's kernel has no TLS: sessions stay in rustls)"
cargo clippy -p ringcast --all-targets --features ktls -- -D warnings
cargo test -p ringcast --features ktls --lib --test tls 2>&1 | tee -a target/test-output.log

if [ "${PEERS:-1}" != 0 ]; then
  step "real peers against examples/echo: Python websockets, Node ws, headless Chromium"
  tools/peers/run.sh
  step "slowloris (slowhttptest) while a normal client keeps echoing, over ws:// and over wss://; TLS renegotiation refused"
  tools/hostile/slowloris.sh
  tools/hostile/slowloris.sh tls
fi

step "ringcast-bench: every scenario for a few seconds against examples/echo and ringcast-hub (JSON asserted)"
tools/bench/smoke.sh

step "kernel TLS for real: a Debian kernel with the tls module in QEMU runs the unit tests, tests/tls.rs and a wss echo with sessions in the kernel"
tools/ktls/vm.sh 2>&1 | tee -a target/test-output.log

if [ "${AUTOBAHN:-1}" != 0 ]; then
  step "Autobahn|Testsuite 1.* to 13.* with permessage-deflate on, against ringcast-hub, the ringcast client, examples/echo with 1 shard and with 2 shards over TLS (reports in target/autobahn/)"
  tools/autobahn/ci.sh
fi

if [ "$fuzz_seconds" != 0 ]; then
  step "fuzz (${fuzz_seconds}s per target)"
  tools/fuzz.sh "$fuzz_seconds"
fi
step "all checks passed"
# One closing line with the totals of every cargo test run above.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' target/test-output.log

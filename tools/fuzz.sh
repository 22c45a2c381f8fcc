#!/usr/bin/env bash
# Runs every fuzz target of ringcast-proto for a bounded time, with
# AddressSanitizer, starting from the committed seeds.
#
#   tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Default 60 s per target. Needs cargo-fuzz (cargo install cargo-fuzz).
# Stable Rust runs the sanitizer build through RUSTC_BOOTSTRAP=1 (the
# -Zsanitizer flag is nightly-only). A crash leaves its input under
# crates/ringcast-proto/fuzz/artifacts/TARGET/ and fails this script; turn it
# into a regression test in crates/ringcast-proto/tests/regressions/.
set -euo pipefail
seconds=${1:-60}
shift || true
cd "$(dirname "$0")/../crates/ringcast-proto/fuzz"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(handshake_request client_response frame_stream inflate)
export RUSTC_BOOTSTRAP=1
# A cached compiler probe from a build without the sanitizer confuses cargo.
rm -f target/.rustc_info.json
cargo fuzz build -O >/dev/null 2>&1 || cargo fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "fuzz: $t for ${seconds}s"
  cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done|INFO: Running)|panicked|ERROR' || true
  if [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
    echo "fuzz: $t found a crash: $(ls "artifacts/$t")" >&2
    exit 1
  fi
done
echo "fuzz: all targets ran ${seconds}s without a crash"

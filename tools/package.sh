#!/usr/bin/env bash
# The three crates as a user gets them from crates.io: `cargo package`
# for ringcast-proto, ringcast and ringcast-hub, each packaged alone and
# built from its package (the verification), against the newest
# dependency versions their requirements allow (a `cargo update`d
# lockfile, as a new dependent's build would resolve) and with warnings
# as errors: a deprecation in a dependency's new release fails here
# before it reaches a user's build. The committed Cargo.lock is put back
# afterwards; the build goes to its own target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
saved=$(mktemp)
cp Cargo.lock "$saved"
trap 'cp "$saved" Cargo.lock; rm -f "$saved"' EXIT
cargo update 2>&1 | grep -E "Updating|Locking" | head -40 || true
RUSTFLAGS="-D warnings" CARGO_TARGET_DIR=target/fresh-deps \
  cargo package -p ringcast-proto -p ringcast -p ringcast-hub --allow-dirty
echo "packaged and verified: $(ls target/fresh-deps/package/*.crate | xargs -n1 basename | tr '\n' ' ')"

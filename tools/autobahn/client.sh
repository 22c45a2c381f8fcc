#!/usr/bin/env bash
# Runs Autobahn|Testsuite's fuzzing server against the ringcast client
# (examples/autobahn_client: every case, echoing each message back) and
# gates the result like the server runs (gate.py, allowlist.txt).
#
#   tools/autobahn/client.sh [PORT] [CASES]
#
# CASES: comma-separated case patterns, default 1.* to 13.* (8.* and 11.*
# do not exist); with 12.* or 13.* listed the client offers
# permessage-deflate.
# The HTML report goes to target/autobahn/ringcast-client/.
set -euo pipefail
cd "$(dirname "$0")/../.."
port=${1:-9110}
cases=${2:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*,12.*,13.*}
deflate=()
case ",$cases" in *,12.*|*,13.*) deflate=(--deflate) ;; esac
wstest=$(tools/autobahn/install.sh)
cargo build --release -q -p ringcast --example autobahn_client
out=target/autobahn/ringcast-client
rm -rf "$out"
mkdir -p "$out"
python3 - "$port" "$cases" "$out/spec.json" <<'PY'
import json, sys
port, cases, path = sys.argv[1:]
json.dump({"url": "ws://127.0.0.1:" + port, "outdir": "./reports", "cases": cases.split(","),
           "exclude-cases": [], "exclude-agent-cases": {}}, open(path, "w"), indent=2)
PY
echo "autobahn: fuzzing server on port $port against the ringcast client, cases $cases ${deflate[*]}"
(cd "$out" && exec "$wstest" -m fuzzingserver -s spec.json > wstest.log 2>&1) &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
target/release/examples/autobahn_client "ws://127.0.0.1:$port" ringcast-client "${deflate[@]}"
python3 tools/autobahn/gate.py "$out/reports/index.json" tools/autobahn/allowlist.txt

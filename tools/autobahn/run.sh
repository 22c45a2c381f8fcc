#!/usr/bin/env bash
# Runs Autobahn|Testsuite's fuzzing client against a running server and
# gates the result.
#
#   tools/autobahn/run.sh ws://127.0.0.1:9001 NAME [CASES]
#
# CASES is a comma-separated list of case patterns (default: 1.* to 10.*;
# 12.* and 13.* test permessage-deflate and run only when listed, against a
# server that offers it, e.g. examples/echo --deflate).
# The HTML report goes to target/autobahn/NAME/; the gate (gate.py) fails on
# any FAILED or UNIMPLEMENTED case, and on NON-STRICT ones not allowlisted in
# tools/autobahn/allowlist.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
url=${1:?usage: run.sh ws://HOST:PORT NAME [CASES]}
name=${2:?usage: run.sh ws://HOST:PORT NAME [CASES]}
cases=${3:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*}
wstest=$(tools/autobahn/install.sh)
out="target/autobahn/$name"
rm -rf "$out"
mkdir -p "$out"
python3 - "$url" "$name" "$cases" "$out" <<'PY'
import json, sys
url, name, cases, out = sys.argv[1:]
spec = {
    "outdir": "reports",  # wstest runs inside `out`
    "servers": [{"agent": name, "url": url, "options": {"version": 18}}],
    "cases": cases.split(","),
    # permessage-deflate's groups run only when asked for.
    "exclude-cases": [g + ".*" for g in ("12", "13") if not any(c.split(".")[0] == g for c in cases.split(","))],
    "exclude-agent-cases": {},
}
json.dump(spec, open(out + "/spec.json", "w"), indent=2)
PY
echo "autobahn: $name at $url, cases $cases"
# wstest exits 0 even when cases fail: the gate decides.
(cd "$out" && "$wstest" -m fuzzingclient -s spec.json > wstest.log 2>&1) || {
  echo "autobahn: wstest itself failed; see $out/wstest.log" >&2
  tail -20 "$out/wstest.log" >&2
  exit 1
}
python3 tools/autobahn/gate.py "$out/reports/index.json" tools/autobahn/allowlist.txt

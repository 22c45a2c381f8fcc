#!/usr/bin/env bash
# Real WebSocket peers against examples/echo (2 shards): Python
# `websockets`, Node `ws` and headless Chromium; then two Chromium pages
# chatting through ringcast-hub's page. Installs what is missing
# (pip, npm into target/peers, Debian's chromium). Called by tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$PWD/target/peers"
mkdir -p "$work"
log() { printf 'peers: %s\n' "$*"; }
# Chromium's helper processes can still write into a profile for a moment
# after the browser is killed: retry the removal, and never fail on it.
remove_dir() {
  for _ in $(seq 40); do
    rm -rf "$1" 2>/dev/null && return 0
    sleep 0.25
  done
  log "note: could not remove $1; left behind"
}

python3 -c 'import websockets' 2>/dev/null || python3 -m pip install -q 'websockets==17.4'
if [ ! -d "$work/node/node_modules/ws" ]; then
  mkdir -p "$work/node"
  (cd "$work/node" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund ws@8.23.0)
fi
if ! command -v chromium >/dev/null 2>&1; then
  apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
fi
cargo build --release -q -p ringcast --example echo

port=9201
target/release/examples/echo --listen "127.0.0.1:$port" --shards 2 > "$work/echo.log" 2>&1 &
echo_pid=$!
http_pid=
hub_pid=
cleanup() {
  kill "$echo_pid" 2>/dev/null || true
  [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
  [ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
url="ws://127.0.0.1:$port/"

python3 tools/peers/python_client.py "$url"
NODE_PATH="$work/node/node_modules" node tools/peers/node_client.js "$url"

# The browser: a page served here opens the WebSocket and reports by
# loading /done?... from this server.
python3 -m http.server 9202 --bind 127.0.0.1 --directory tools/peers > "$work/http.log" 2>&1 &
http_pid=$!
profile=$(mktemp -d)
timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
  "http://127.0.0.1:9202/browser.html?ws=$url" > "$work/chromium.log" 2>&1 &
browser_pid=$!
report=
for _ in $(seq 300); do
  report=$(grep -o 'GET /done?[^ ]*' "$work/http.log" || true)
  [ -n "$report" ] && break
  sleep 0.1
done
kill "$browser_pid" 2>/dev/null || true
wait "$browser_pid" 2>/dev/null || true
remove_dir "$profile"
chromium_version=$(chromium --version 2>/dev/null | head -n1 | cut -d' ' -f1-2)
if [ "$report" != "GET /done?code=4003&messages=5&bad=0&clean=true" ]; then
  log "chromium: unexpected report '${report:-none}' (see $work/chromium.log)"
  exit 1
fi
log "$chromium_version (headless): 5 messages (text, binary, 600 KB text, 1 MiB binary, empty), close 4003 clean: ok"

kill -INT "$echo_pid"
wait "$echo_pid"
log "echo server stopped cleanly: $(tail -n1 "$work/echo.log")"

# The hub's chat page in two browser pages (debug build: the tests built
# its dependencies already).
cargo build -q -p ringcast-hub
hub_port=9203
target/debug/ringcast-hub --listen "127.0.0.1:$hub_port" --shards 2 > "$work/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$hub_port") 2>/dev/null && break; sleep 0.1; done
NODE_PATH="$work/node/node_modules" node tools/peers/chat_browser.js "http://127.0.0.1:$hub_port"
NODE_PATH="$work/node/node_modules" node tools/peers/dashboard_browser.js "http://127.0.0.1:$hub_port" "$work/dashboard.png"
kill -TERM "$hub_pid"
wait "$hub_pid"
log "hub stopped cleanly: $(tail -n1 "$work/hub.log")"

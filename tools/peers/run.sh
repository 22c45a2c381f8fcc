#!/usr/bin/env bash
# Real WebSocket peers against examples/echo (2 shards), without and with
# permessage-deflate, and over TLS (wss://, a certificate made for the run):
# Python `websockets`, Node `ws` and headless Chromium; then two Chromium
# pages chatting through ringcast-hub's page (with --compression), over
# http:// and over https://. Installs what is missing
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

# A self-signed certificate for 127.0.0.1 and localhost, for wss://.
tls="$work/tls"
tools/tls_cert.sh "$tls"
export PEER_CA="$tls/cert.pem"

# Three echo servers: without permessage-deflate, with it (--deflate), and
# with it over TLS.
port=9201
deflate_port=9204
tls_port=9205
target/release/examples/echo --listen "127.0.0.1:$port" --shards 2 > "$work/echo.log" 2>&1 &
echo_pid=$!
target/release/examples/echo --listen "127.0.0.1:$deflate_port" --shards 2 --deflate > "$work/echo-deflate.log" 2>&1 &
deflate_pid=$!
target/release/examples/echo --listen "127.0.0.1:$tls_port" --shards 2 --deflate \
  --tls-cert "$tls/cert.pem" --tls-key "$tls/key.pem" > "$work/echo-tls.log" 2>&1 &
tls_pid=$!
http_pid=
hub_pid=
cleanup() {
  kill "$echo_pid" "$deflate_pid" "$tls_pid" 2>/dev/null || true
  [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
  [ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null || true
}
trap cleanup EXIT
for p in "$port" "$deflate_port" "$tls_port"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done
url="ws://127.0.0.1:$port/"
deflate_url="ws://127.0.0.1:$deflate_port/"
tls_url="wss://127.0.0.1:$tls_port/"

python3 tools/peers/python_client.py "$url" plain
python3 tools/peers/python_client.py "$deflate_url" deflate
python3 tools/peers/python_client.py "$tls_url" deflate
NODE_PATH="$work/node/node_modules" node tools/peers/node_client.js "$url" plain
NODE_PATH="$work/node/node_modules" node tools/peers/node_client.js "$deflate_url" deflate
NODE_PATH="$work/node/node_modules" node tools/peers/node_client.js "$tls_url" deflate

# The browser: a page served here opens the WebSocket and reports by
# loading /done?... from this server.
python3 -m http.server 9202 --bind 127.0.0.1 --directory tools/peers >> "$work/http.log" 2>&1 &
http_pid=$!
chromium_version=$(chromium --version 2>/dev/null | head -n1 | cut -d' ' -f1-2)
# browser_check WS-URL EXTENSION: the page's report must show every message
# intact, the clean close, and EXTENSION (or none) in the 101.
browser_check() {
  local server=$1 ext=$2 profile report= browser_pid
  profile=$(mktemp -d)
  : > "$work/http.log"
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --ignore-certificate-errors --user-data-dir="$profile" \
    "http://127.0.0.1:9202/browser.html?ws=$server" > "$work/chromium.log" 2>&1 &
  browser_pid=$!
  for _ in $(seq 300); do
    report=$(grep -ao 'GET /done?[^ ]*' "$work/http.log" || true)
    [ -n "$report" ] && break
    sleep 0.1
  done
  kill "$browser_pid" 2>/dev/null || true
  wait "$browser_pid" 2>/dev/null || true
  remove_dir "$profile"
  if [ "$report" != "GET /done?code=4003&messages=5&bad=0&clean=true&ext=$ext" ]; then
    log "chromium: unexpected report '${report:-none}' from $server (see $work/chromium.log)"
    exit 1
  fi
  log "$chromium_version (headless), ${server%%:*}, extension $ext: 5 messages (text, binary, 600 KB text, 1 MiB binary, empty), close 4003 clean: ok"
}
browser_check "$url" none
browser_check "$deflate_url" permessage-deflate
browser_check "$tls_url" permessage-deflate

for pid in "$echo_pid" "$deflate_pid" "$tls_pid"; do
  kill -INT "$pid"
  wait "$pid"
done
log "echo servers stopped cleanly: $(tail -n1 "$work/echo.log"); $(tail -n1 "$work/echo-deflate.log"); $(tail -n1 "$work/echo-tls.log")"

# The hub's chat page in two browser pages (debug build: the tests built
# its dependencies already).
cargo build -q -p ringcast-hub
hub_port=9203
# With --compression: the chat page's socket must negotiate permessage-deflate.
target/debug/ringcast-hub --listen "127.0.0.1:$hub_port" --shards 2 --compression > "$work/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$hub_port") 2>/dev/null && break; sleep 0.1; done
NODE_PATH="$work/node/node_modules" node tools/peers/chat_browser.js "http://127.0.0.1:$hub_port" deflate
NODE_PATH="$work/node/node_modules" node tools/peers/dashboard_browser.js "http://127.0.0.1:$hub_port" "$work/dashboard.png"
kill -TERM "$hub_pid"
wait "$hub_pid"
log "hub stopped cleanly: $(tail -n1 "$work/hub.log")"

# The same chat over https:// and wss:// (the page picks the scheme).
target/debug/ringcast-hub --listen "127.0.0.1:$hub_port" --shards 2 --compression \
  --tls-cert "$tls/cert.pem" --tls-key "$tls/key.pem" > "$work/hub-tls.log" 2>&1 &
hub_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$hub_port") 2>/dev/null && break; sleep 0.1; done
NODE_PATH="$work/node/node_modules" node tools/peers/chat_browser.js "https://127.0.0.1:$hub_port" deflate
kill -TERM "$hub_pid"
wait "$hub_pid"
log "TLS hub stopped cleanly: $(tail -n1 "$work/hub-tls.log")"

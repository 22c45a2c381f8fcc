// Two headless Chromium pages use the hub's chat page at "/": both join a
// room, each types a message, and each must see the other's. Driven over
// the DevTools protocol (Node `ws`), the way a person would use the page:
// fill the fields, click Join, type, click Send.
//
// usage: node chat_browser.js http://127.0.0.1:PORT
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const WebSocket = require("ws");

const base = process.argv[2];
if (!base) {
  console.error("usage: node chat_browser.js http://HOST:PORT");
  process.exit(2);
}
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ringcast-chat-"));
const browser = spawn("chromium", [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
  `--user-data-dir=${profile}`, "--remote-debugging-port=0", "about:blank",
], { stdio: ["ignore", "ignore", "pipe"] });
let stderr = "";
browser.stderr.on("data", (d) => { stderr += d; });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function fail(message) {
  console.error(`chat: ${message}`);
  if (stderr) console.error(stderr.split("\n").slice(-5).join("\n"));
  cleanup();
  process.exit(1);
}
// Chromium's helper processes (renderer, GPU, zygote) may still be writing
// into the profile for a moment after the main process is killed, so the
// removal is retried for a few seconds; clean-up never turns a result into a
// failure (a profile left behind is only reported).
function cleanup() {
  try {
    browser.kill("SIGKILL");
  } catch (e) {
    // already gone
  }
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 0; attempt < 40; attempt++) {
    try {
      fs.rmSync(profile, { recursive: true, force: true });
      return;
    } catch (e) {
      Atomics.wait(pause, 0, 0, 250); // a synchronous sleep
    }
  }
  console.error(`chat: note: could not remove ${profile}; left behind`);
}
setTimeout(() => fail("timed out after 60 s"), 60000).unref();

async function devtoolsPort() {
  const file = path.join(profile, "DevToolsActivePort");
  for (let i = 0; i < 300; i++) {
    if (fs.existsSync(file)) {
      const port = fs.readFileSync(file, "utf8").split("\n")[0];
      if (port) return port;
    }
    await sleep(100);
  }
  fail("chromium did not open its DevTools port");
}

// One page: a DevTools session with evaluate() and insertText().
async function openPage(port, url) {
  const res = await fetch(`http://127.0.0.1:${port}/json/new?${encodeURI(url)}`, { method: "PUT" });
  if (!res.ok) fail(`could not open a page: HTTP ${res.status}`);
  const target = await res.json();
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => { socket.on("open", resolve); socket.on("error", reject); });
  let nextId = 1;
  const waiting = new Map();
  socket.on("message", (raw) => {
    const msg = JSON.parse(raw);
    if (msg.id && waiting.has(msg.id)) {
      waiting.get(msg.id)(msg);
      waiting.delete(msg.id);
    }
  });
  const call = (method, params = {}) => new Promise((resolve) => {
    const id = nextId++;
    waiting.set(id, resolve);
    socket.send(JSON.stringify({ id, method, params }));
  });
  const evaluate = async (expression) => {
    const reply = await call("Runtime.evaluate", { expression, returnByValue: true });
    if (reply.error || reply.result.exceptionDetails) fail(`evaluate ${expression}: ${JSON.stringify(reply)}`);
    return reply.result.result.value;
  };
  const waitFor = async (expression, what) => {
    for (let i = 0; i < 200; i++) {
      if (await evaluate(expression)) return;
      await sleep(50);
    }
    fail(`${what}: not seen within 10 s (page log: ${JSON.stringify(await evaluate(LOG))})`);
  };
  const type = async (text) => call("Input.insertText", { text });
  return { evaluate, waitFor, type, close: () => socket.close() };
}

const LOG = "[...document.querySelectorAll('#log li')].map((li) => li.textContent)";

async function join(page, room, name) {
  await page.waitFor("document.readyState === 'complete' && !!document.getElementById('join')", "the chat page");
  await page.evaluate(`document.getElementById('room').value = ${JSON.stringify(room)};
    document.getElementById('name').value = ${JSON.stringify(name)};
    document.getElementById('join').click(); true`);
  await page.waitFor("!document.getElementById('send').disabled", `${name} joined ${room}`);
}

async function say(page, text) {
  await page.evaluate("document.getElementById('text').focus(); true");
  await page.type(text);
  await page.evaluate("document.getElementById('send').click(); true");
}

(async () => {
  const port = await devtoolsPort();
  const room = `room-${process.pid}`;
  const alice = await openPage(port, `${base}/`);
  const bob = await openPage(port, `${base}/`);
  await join(alice, room, "alice");
  await join(bob, room, "bob");
  await say(alice, "hello from alice ✓");
  await bob.waitFor(`${LOG}.includes('alicehello from alice ✓')`, "bob sees alice's message");
  await say(bob, "hi alice, bob here");
  await alice.waitFor(`${LOG}.includes('bobhi alice, bob here')`, "alice sees bob's message");
  // Each saw the other's line once, and its own line once (shown locally,
  // not echoed back by the hub).
  const aliceLog = await alice.evaluate(LOG);
  const bobLog = await bob.evaluate(LOG);
  const count = (log, line) => log.filter((l) => l === line).length;
  if (count(aliceLog, "alicehello from alice ✓") !== 1 || count(bobLog, "alicehello from alice ✓") !== 1) {
    fail(`alice's line should appear once on each page: ${JSON.stringify({ aliceLog, bobLog })}`);
  }
  if (count(aliceLog, "bobhi alice, bob here") !== 1 || count(bobLog, "bobhi alice, bob here") !== 1) {
    fail(`bob's line should appear once on each page: ${JSON.stringify({ aliceLog, bobLog })}`);
  }
  const version = await alice.evaluate("navigator.userAgent.match(/Chrome\\/[\\d.]+/)[0]");
  alice.close();
  bob.close();
  cleanup();
  console.log(`chat: ${version} (headless), two pages in ${room} exchanged messages: ok`);
  process.exit(0);
})().catch((e) => fail(e.stack || String(e)));

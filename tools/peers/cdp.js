// Headless Chromium for the browser checks, driven over the DevTools
// protocol with Node `ws`: a fresh profile, pages to evaluate in, type into
// and photograph, and a clean-up that never fails a check that passed.
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const WebSocket = require("ws");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts Chromium; `tag` prefixes every message. Gives up after `limitMs`.
function launch(tag, limitMs = 60000) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), `ringcast-${tag}-`));
  const browser = spawn("chromium", [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,800",
    // The TLS checks' certificate is made for the run, not signed by a CA
    // this browser knows.
    "--ignore-certificate-errors",
    `--user-data-dir=${profile}`, "--remote-debugging-port=0", "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  browser.stderr.on("data", (d) => { stderr += d; });

  // Chromium's helper processes (renderer, GPU, zygote) may still be
  // writing into the profile for a moment after the main process is
  // killed, so the removal is retried for a few seconds; a profile left
  // behind is only reported.
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
    console.error(`${tag}: note: could not remove ${profile}; left behind`);
  }
  function fail(message) {
    console.error(`${tag}: ${message}`);
    if (stderr) console.error(stderr.split("\n").slice(-5).join("\n"));
    cleanup();
    process.exit(1);
  }
  setTimeout(() => fail(`timed out after ${limitMs / 1000} s`), limitMs).unref();

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

  // One page: evaluate(), waitFor(), type(), screenshot().
  async function openPage(url, debugExpression = "document.title") {
    const port = await devtoolsPort();
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
      fail(`${what}: not seen within 10 s (page: ${JSON.stringify(await evaluate(debugExpression))})`);
    };
    const type = async (text) => call("Input.insertText", { text });
    const screenshot = async (file) => {
      const reply = await call("Page.captureScreenshot", { format: "png" });
      if (reply.error) fail(`screenshot: ${JSON.stringify(reply.error)}`);
      fs.writeFileSync(file, Buffer.from(reply.result.data, "base64"));
    };
    return { evaluate, waitFor, type, screenshot, close: () => socket.close() };
  }

  return { openPage, fail, cleanup };
}

module.exports = { launch, sleep };

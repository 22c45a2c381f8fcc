// Two headless Chromium pages use the hub's chat page at "/": both join a
// room, each types a message, and each must see the other's. Driven over
// the DevTools protocol (Node `ws`), the way a person would use the page:
// fill the fields, click Join, type, click Send.
//
// usage: node chat_browser.js http://127.0.0.1:PORT [deflate]
//
// With `deflate` (a hub started with --compression), each page's socket
// must have negotiated permessage-deflate, and a long line (compressed on
// the wire both ways) must arrive intact.
"use strict";
const { launch } = require("./cdp");

const base = process.argv[2];
const deflate = process.argv[3] === "deflate";
if (!base) {
  console.error("usage: node chat_browser.js http://HOST:PORT [deflate]");
  process.exit(2);
}
const { openPage, fail, cleanup } = launch("chat");

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
  const room = `room-${process.pid}`;
  const alice = await openPage(`${base}/`, LOG);
  const bob = await openPage(`${base}/`, LOG);
  await join(alice, room, "alice");
  await join(bob, room, "bob");
  await say(alice, "hello from alice ✓");
  await bob.waitFor(`${LOG}.includes('alicehello from alice ✓')`, "bob sees alice's message");
  await say(bob, "hi alice, bob here");
  await alice.waitFor(`${LOG}.includes('bobhi alice, bob here')`, "alice sees bob's message");
  let extensions = "";
  if (deflate) {
    // Chromium offers permessage-deflate; `socket` is the page's socket.
    for (const page of [alice, bob]) {
      extensions = await page.evaluate("socket.extensions");
      if (!extensions.startsWith("permessage-deflate")) fail(`the chat socket negotiated '${extensions}'`);
    }
    // Past the hub's compression threshold (128 B): compressed both ways.
    const long = "a long line, compressed on the wire ".repeat(60);
    await say(alice, long);
    await bob.waitFor(`${LOG}.includes(${JSON.stringify("alice" + long)})`, "bob sees alice's long line");
  }
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
  const how = deflate ? ` with ${extensions}` : "";
  console.log(`chat: ${version} (headless), ${base}: two pages in ${room} exchanged messages${how}: ok`);
  process.exit(0);
})().catch((e) => fail(e.stack || String(e)));

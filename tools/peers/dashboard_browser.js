// The hub's live dashboard at /dashboard in headless Chromium: with
// subscribers on two topics and a publisher at about 50 messages per
// second, the page's numbers must match /metrics (connections, topics, the
// publish rate) and, once traffic stops, its totals must equal /metrics'
// exactly. A screenshot is kept in target/peers/dashboard.png.
//
// usage: node dashboard_browser.js http://127.0.0.1:PORT OUT.png
"use strict";
const fs = require("fs");
const WebSocket = require("ws");
const { launch, sleep } = require("./cdp");

const [base, shot] = process.argv.slice(2);
if (!base || !shot) {
  console.error("usage: node dashboard_browser.js http://HOST:PORT OUT.png");
  process.exit(2);
}
const { openPage, fail, cleanup } = launch("dashboard");
const wsBase = base.replace(/^http/, "ws");

function open(path) {
  const ws = new WebSocket(wsBase + path);
  return new Promise((resolve, reject) => { ws.on("open", () => resolve(ws)); ws.on("error", reject); });
}

async function metrics() {
  const text = await (await fetch(`${base}/metrics`)).text();
  const sums = {};
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const space = line.lastIndexOf(" ");
    const name = line.slice(0, space).replace(/\{.*\}$/, "");
    sums[name] = (sums[name] || 0) + Number(line.slice(space + 1));
  }
  return sums;
}

const READ = `(() => {
  if (!document.body || !document.getElementById("bridge")) return { updates: 0 };
  const v = (id) => document.getElementById(id).textContent;
  const t = (id) => Number(document.getElementById(id).dataset.total);
  return { updates: Number(document.body.dataset.updates || 0), connections: Number(v("connections")),
    topics: Number(v("topics")), publishRate: Number(v("publish_rate")), outRate: Number(v("out_rate")),
    publishes: t("publish_rate"), received: t("in_rate"), bridge: v("bridge") };
})()`;

(async () => {
  const subscribers = [];
  for (let i = 0; i < 4; i++) subscribers.push(await open("/topics/dash"));
  const control = await open("/ws");
  control.send(JSON.stringify({ op: "subscribe", topic: "other" }));
  const publisher = await open("/topics/dash");
  let sent = 0;
  const ticker = setInterval(() => { publisher.send(`tick ${sent++}`); }, 20);

  const page = await openPage(`${base}/dashboard`, READ);
  await page.waitFor(`${READ}.updates >= 4`, "four dashboard updates");
  const shown = await page.evaluate(READ);
  const truth = await metrics();
  const problems = [];
  if (shown.topics !== 2 || truth.ringcast_hub_topics !== 2) {
    problems.push(`topics: page ${shown.topics}, /metrics ${truth.ringcast_hub_topics}, expected 2`);
  }
  // Six WebSockets; each reading of /metrics is itself a connection.
  if (Math.abs(shown.connections - truth.ringcast_connections) > 1 || shown.connections < 6) {
    problems.push(`connections: page ${shown.connections}, /metrics ${truth.ringcast_connections}`);
  }
  if (shown.publishRate < 25 || shown.publishRate > 75) {
    problems.push(`publishes per second: page ${shown.publishRate}, about 50 sent`);
  }
  if (shown.outRate < shown.publishRate) problems.push(`messages out per second ${shown.outRate} < publishes`);
  if (shown.bridge !== "not clustered") problems.push(`bridge: ${shown.bridge}`);

  // Quiet: the totals on the page and in /metrics must agree exactly.
  clearInterval(ticker);
  await sleep(300);
  const settled = (await metrics()).ringcast_hub_publishes_total;
  const updates = shown.updates;
  await page.waitFor(`${READ}.updates >= ${updates + 2}`, "two more updates");
  const quiet = await page.evaluate(READ);
  if (quiet.publishes !== settled) problems.push(`publishes: page ${quiet.publishes}, /metrics ${settled}`);
  if (quiet.publishRate !== 0) problems.push(`publishes per second once quiet: ${quiet.publishRate}`);
  await page.screenshot(shot);
  if (fs.statSync(shot).size < 5000) problems.push("the screenshot is nearly empty");
  if (problems.length) fail(problems.join("; "));

  for (const ws of [...subscribers, control, publisher]) ws.close();
  page.close();
  cleanup();
  console.log(`dashboard: ${shown.connections} connections, ${shown.topics} topics, ` +
    `${shown.publishRate} publishes/s shown for ~50 sent; totals equal /metrics (${settled}); screenshot ${shot}: ok`);
  process.exit(0);
})().catch((e) => fail(e.stack || String(e)));

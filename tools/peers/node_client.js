// Node `ws` against an echo server: text and binary messages of 0 B to
// 16 MiB come back with their type, a ping is answered, the close
// handshake completes with our code. Exit 0 on success.
//
//   node node_client.js ws://127.0.0.1:9001/ [deflate|plain]
//   PEER_CA=ca.pem node node_client.js wss://127.0.0.1:9443/ deflate
//
// With `deflate` the client offers permessage-deflate (perMessageDeflate,
// compressing every message) and the server must accept it; with `plain`
// (the default) nothing is offered.
const WebSocket = require('ws');

const expect = process.argv[3] || 'plain';

const sizes = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20];
const messages = [];
for (const n of sizes) {
  messages.push({ data: 'é'.repeat(Math.floor(n / 2)) + 'a'.repeat(n % 2), binary: false });
  messages.push({ data: Buffer.alloc(n, n % 251), binary: true });
}

const deflate = expect === 'deflate' ? { threshold: 0 } : false;
// wss://: the server's certificate must verify against PEER_CA.
const ca = process.argv[2].startsWith('wss:') ? [require('fs').readFileSync(process.env.PEER_CA)] : undefined;
const ws = new WebSocket(process.argv[2], { maxPayload: 32 << 20, perMessageDeflate: deflate, ca });
let i = 0;
let ponged = false;
let answer = '';
const fail = (why) => { console.error('node ws: ' + why); process.exit(1); };
ws.on('upgrade', (res) => {
  answer = res.headers['sec-websocket-extensions'] || '';
  if (answer.startsWith('permessage-deflate') !== (expect === 'deflate')) fail(`expected ${expect}, the 101 says '${answer}'`);
});
ws.on('open', () => ws.send(messages[0].data, { binary: messages[0].binary }));
ws.on('message', (data, isBinary) => {
  const want = messages[i];
  const same = isBinary ? Buffer.compare(data, want.data) === 0 : data.toString() === want.data;
  if (isBinary !== want.binary || !same) fail(`message ${i} differs`);
  i++;
  if (i < messages.length) ws.send(messages[i].data, { binary: messages[i].binary });
  else ws.ping('node');
});
ws.on('pong', (data) => {
  if (data.toString() !== 'node') fail('pong payload');
  ponged = true;
  ws.close(4002, 'node done');
});
ws.on('close', (code) => {
  if (code !== 4002 || !ponged || i !== messages.length) fail(`close ${code}, ponged ${ponged}, ${i} messages`);
  console.log(`node ws (${process.argv[2].split(':')[0]}, ${answer || 'no extension'}): ${sizes.length} sizes x 2 types, ping, close ${code}: ok`);
  process.exit(0);
});
ws.on('error', (e) => fail(e.message));
setTimeout(() => fail('timed out'), 60000);

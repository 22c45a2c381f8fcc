#!/usr/bin/env python3
"""Python `websockets` against an echo server: text and binary messages of
0 B to 16 MiB come back with their type, a ping is answered, the close
handshake completes with our code. Exit 0 on success.

    python_client.py ws://127.0.0.1:9001/ [deflate|plain]
    PEER_CA=ca.pem python_client.py wss://127.0.0.1:9443/ deflate

websockets offers permessage-deflate by default (window bits 12): with
`deflate` the server must accept it, with `plain` (the default) it must not.
"""
import asyncio, os, ssl, sys

import websockets

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]


def text_of(n):
    # Two-byte characters too, cut to exactly n bytes.
    s = ("abcdefghé" * (n // 10 + 1)).encode()[:n]
    while True:
        try:
            return s.decode()
        except UnicodeDecodeError:
            s = s[:-1] + b"a"


async def main(url, expect):
    # wss://: the server's certificate must verify against PEER_CA.
    tls = ssl.create_default_context(cafile=os.environ["PEER_CA"]) if url.startswith("wss:") else None
    async with websockets.connect(url, max_size=None, ping_interval=None, ssl=tls) as ws:
        answer = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
        negotiated = answer.startswith("permessage-deflate")
        assert negotiated == (expect == "deflate"), f"expected {expect}, the 101 says {answer!r}"
        for n in SIZES:
            t = text_of(n)
            await ws.send(t)
            got = await ws.recv()
            assert isinstance(got, str) and got == t, f"text of {n} bytes"
            b = bytes(i * 7 % 251 for i in range(n)) if n <= 1 << 16 else bytes(n)
            await ws.send(b)
            got = await ws.recv()
            assert isinstance(got, bytes) and got == b, f"binary of {n} bytes"
        latency = await (await ws.ping(b"python"))
        await ws.close(code=4001, reason="python done")
    assert ws.close_code == 4001, ws.close_code
    print(
        f"python websockets {websockets.__version__} ({url.split(':')[0]}, {answer or 'no extension'}): "
        f"{len(SIZES)} sizes x 2 types, ping ({latency * 1e6:.0f} us), close 4001: ok"
    )


asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "plain"))

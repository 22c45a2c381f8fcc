#!/usr/bin/env python3
"""Holds N idle wss:// connections (Python `websockets`, no pings) until
killed; prints "ready connections=N" once all are open. The TLS holder of
idle_rss.py (ringcast-bench's `connections` speaks plain ws:// only).

    tls_hold.py wss://127.0.0.1:9443/ N CA.pem
"""
import asyncio, ssl, sys

import websockets


async def main(url, n, ca):
    tls = ssl.create_default_context(cafile=ca)
    held = []
    for start in range(0, n, 100):
        batch = [websockets.connect(url, ssl=tls, ping_interval=None, open_timeout=30, compression=None)
                 for _ in range(start, min(n, start + 100))]
        held += await asyncio.gather(*batch)
    print(f"ready connections={len(held)}", flush=True)
    await asyncio.Event().wait()


asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))

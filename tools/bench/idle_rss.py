#!/usr/bin/env python3
"""Server memory per idle WebSocket connection: RSS growth of the server
process as clients open idle connections, after a warm-up batch (so one-time
costs such as the receive pool are not counted per connection).

With transparent huge pages the allocator's arena is backed by 2 MiB pages
and RSS grows in 2 MiB steps, which at 18 000 connections is ±115 bytes per
connection of quantization. So by default the servers run with THP disabled
for their process (prctl PR_SET_THP_DISABLE, inherited from this script):
RSS then follows 4 KiB pages. `--thp` keeps the system's setting. The
connections are added in batches; the figure is the least-squares slope of
RSS over the connection count, beside the plain before/after ratio.

    tools/bench/idle_rss.py [--connections 18000] [--batches 9] [--servers ringcast,fastwebsockets]

`ringcast-tls` serves wss:// (a certificate made for the run); its idle
connections are held by tools/bench/tls_hold.py (Python), the others by
ringcast-bench.
"""
import argparse, ctypes, os, resource, signal, socket, subprocess, sys, time

from procstat import rss_kib, tls_certificate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")
TLS_DIR = os.path.join(ROOT, "target", "idle-rss-tls")
SERVERS = {
    "ringcast": lambda port: [f"{BIN}/examples/echo", "--listen", f"127.0.0.1:{port}", "--shards", "1"],
    # permessage-deflate negotiated on every connection (the clients offer it).
    "ringcast-deflate": lambda port: [f"{BIN}/examples/echo", "--listen", f"127.0.0.1:{port}", "--shards", "1", "--deflate"],
    "fastwebsockets": lambda port: [f"{BIN}/fastwebsockets-peer", f"127.0.0.1:{port}", "echo"],
    "ringcast-tls": lambda port: [f"{BIN}/examples/echo", "--listen", f"127.0.0.1:{port}", "--shards", "1",
                                  "--tls-cert", f"{TLS_DIR}/cert.pem", "--tls-key", f"{TLS_DIR}/key.pem"],
}

def hold_tls(port, n):
    client = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "bench", "tls_hold.py"),
                               f"wss://127.0.0.1:{port}/", str(n), f"{TLS_DIR}/cert.pem"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = client.stdout.readline()
    if line.strip() != f"ready connections={n}":
        client.kill()
        raise SystemExit(f"TLS holder failed: {line}{client.stderr.read()}")
    return client

def hold(port, n, seconds, deflate=False):
    # `connections` without pings holds idle connections; it prints
    # "ready connections=N" once all are up (and "deflate=N" when every one
    # negotiated permessage-deflate).
    extra = ["--offer-deflate"] if deflate else []
    client = subprocess.Popen([f"{BIN}/ringcast-bench", "connections", "--url", f"ws://127.0.0.1:{port}/",
                               "--connections", str(n), "--hold", str(seconds), "--ping-interval", "0"] + extra,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = client.stdout.readline()
    want = f"ready connections={n}" + (f" deflate={n}" if deflate else "")
    if not line.startswith("ready") or line.strip() != want:
        client.kill()
        raise SystemExit(f"idle client failed: {line}{client.stderr.read()}")
    return client

def measure(name, port, args):
    server = subprocess.Popen(["taskset", "-c", args.server_cpu] + SERVERS[name](port),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.02)
        deflate = name.endswith("-deflate")
        tls = name.endswith("-tls")
        take = (lambda n: hold_tls(port, n)) if tls else (lambda n: hold(port, n, 3600, deflate))
        clients = [take(args.warmup)]
        time.sleep(args.settle)
        points = [(0, rss_kib(server.pid))]
        batch = args.connections // args.batches
        for i in range(args.batches):
            clients.append(take(batch))
            time.sleep(args.settle)
            points.append(((i + 1) * batch, rss_kib(server.pid)))
        for c in clients:
            c.kill()
            c.wait()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points) * 1024
    (x0, before), (x1, after) = points[0], points[-1]
    print(f"{name:>15}: RSS {before} KiB -> {after} KiB with {x1} more idle connections: "
          f"{(after - before) * 1024 / x1:.0f} bytes per connection (before/after), "
          f"{slope:.0f} bytes per connection (slope over {n} points)", flush=True)
    print(f"{'':>15}  points (connections, KiB): {points}", flush=True)
    return slope

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=18000)
    p.add_argument("--batches", type=int, default=9)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--servers", default="ringcast,fastwebsockets")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--thp", action="store_true", help="keep transparent huge pages (coarse RSS steps)")
    args = p.parse_args()
    if not args.thp:
        PR_SET_THP_DISABLE = 41
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0:
            print("warning: could not disable THP; RSS will move in 2 MiB steps", file=sys.stderr)
    # Server and clients inherit this; raising the hard limit needs root.
    want = args.connections + args.warmup + 100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        if soft < want:
            raise SystemExit(f"open-file limit {soft} < {want}: lower --connections or run as root")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ringcast", "--examples",
                        "-p", "ringcast-peers", "-p", "ringcast-bench"], cwd=ROOT, check=True)
    port = 9500
    if "ringcast-tls" in args.servers.split(","):
        tls_certificate(TLS_DIR)
    for name in args.servers.split(","):
        port += 1
        measure(name, port, args)

if __name__ == "__main__":
    main()

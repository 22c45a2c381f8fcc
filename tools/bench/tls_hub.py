#!/usr/bin/env python3
"""The hub over ws:// and over wss:// (TLS 1.3 in the shard, a certificate
made for the run), side by side in rounds (A B A B): one publisher at a
fixed rate into a room of N subscribers, 1 KiB messages. For every run:
hub CPU per publish (the scheduler's nanosecond account of its threads),
delivery latency p50/p99 and the hub's peak RSS. Each subscriber's copy is
encrypted for it alone (its own keys), so the TLS cost grows with the
subscribers; the load generator decrypts every delivery on its one core.

    tools/bench/tls_hub.py [--rounds 3] [--seconds 4] [--subscribers 1,100,1000] [--rate 100]
"""
import argparse, os, statistics, subprocess

from broadcast_compare import BIN, ROOT, hub_command, run_one
from procstat import cpu_seconds_fine, tls_certificate

TLS_DIR = os.path.join(ROOT, "target", "bench-tls")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--subscribers", default="1,100,1000")
    p.add_argument("--rate", type=int, default=100)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--no-build", action="store_true")
    args = p.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ringcast-hub", "-p", "ringcast-bench"],
                       cwd=ROOT, check=True)
    cert, key = tls_certificate(TLS_DIR)
    hub = hub_command(f"{BIN}/ringcast-hub", "16MiB")
    modes = {
        "ws": (hub, [], lambda port: f"ws://127.0.0.1:{port}/topics/bench"),
        "wss": (lambda port: hub(port) + ["--tls-cert", cert, "--tls-key", key], ["--tls-ca", cert],
                lambda port: f"wss://localhost:{port}/topics/bench"),
    }
    counts = [int(n) for n in args.subscribers.split(",")]
    rows, port = [], 9850
    for rnd in range(args.rounds):
        for subs in counts:
            for mode, (command, extra, url) in modes.items():
                port += 1
                row = run_one(mode, command, port, subs, args.size, args.rate, args, extra, cpu=cpu_seconds_fine,
                              url=url)
                if row["errors"]:
                    raise SystemExit(f"{mode} {subs}: {row['errors']} errors")
                rows.append(row)
                print(f"round {rnd + 1} {subs:>5} subscribers {mode:>4}: {row['us_per_publish']:8.1f} µs CPU/publish"
                      f"  p50 {row['p50_us']:7.0f} µs  p99 {row['p99_us']:7.0f} µs  peak RSS {row['peak_rss_mib']:.1f} MiB",
                      flush=True)
    print(f"\nmedians of {args.rounds} rounds; {args.size} B messages at {args.rate}/s")
    print("| subscribers | scheme | hub CPU per publish | vs ws | p50 | p99 | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for subs in counts:
        med = {}
        for mode in modes:
            mine = [r for r in rows if r["server"] == mode and r["subs"] == subs]
            med[mode] = {k: statistics.median(r[k] for r in mine) for k in ("us_per_publish", "p50_us", "p99_us",
                                                                            "peak_rss_mib")}
        for mode, m in med.items():
            vs = m["us_per_publish"] / med["ws"]["us_per_publish"]
            print(f"| {subs} | {mode} | {m['us_per_publish']:.1f} µs | {vs:.2f}× | {m['p50_us'] / 1000:.2f} ms "
                  f"| {m['p99_us'] / 1000:.2f} ms | {m['peak_rss_mib']:.1f} MiB |")


if __name__ == "__main__":
    main()

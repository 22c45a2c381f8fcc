#!/usr/bin/env python3
"""permessage-deflate on the hub: one publisher at a fixed rate into a room
of N subscribers, 1 KiB JSON-like text messages, with compression off, on
(each publish compressed once for every subscriber), and on with context
takeover (each subscriber's window kept: compressed once per subscriber),
run side by side in rounds (A B C A B C). uWebSockets' room joins when
UWS_ROOM_DEFLATE names a uws_room built with compression (a private build,
see docs/benchmarks.md) that reads UWS_MODE: `shared` (SHARED_COMPRESSOR,
publish compressing for each subscriber), `prepared` (the loop compresses
once, publishPrepared shares it) and `dedicated` (DEDICATED_COMPRESSOR:
context takeover) and `off`. `--modes` picks among them and three
more: `takeover-m1` (memory level 1), `takeover-w9` (a 512 B window) and
`takeover-w9-m1` (both), which show what those settings save per
subscriber.

For every run: server CPU per publish (the scheduler's nanosecond account
of the server's threads over the measured window, in µs of one core), bytes on the wire per delivery (read by the
subscribers, frame headers included), the compression ratio (payload bytes
/ wire bytes), delivery latency p50/p99 and the server's peak RSS. The
subscribers inflate and check every message (ringcast-bench broadcast
--deflate --filler json).

    tools/bench/compression.py [--rounds 3] [--seconds 5] [--subscribers 1,10,100,1000] [--rate 100]
                               [--modes off,once,takeover,uws-off,uws-shared,uws-prepared,uws-dedicated]
"""
import argparse, os, statistics, subprocess

from broadcast_compare import BIN, ROOT, hub_command, run_one
from procstat import cpu_seconds_fine


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--subscribers", default="1,10,100,1000")
    p.add_argument("--rate", type=int, default=100)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--modes", default=None, help="comma-separated; default: off, once, takeover and uWebSockets' four")
    p.add_argument("--no-build", action="store_true")
    args = p.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ringcast-hub", "-p", "ringcast-bench"],
                       cwd=ROOT, check=True)
    hub = hub_command(f"{BIN}/ringcast-hub", "16MiB")

    def takeover(*more):
        return lambda port: hub(port) + ["--compression", "--compression-context-takeover", *more], ["--deflate"]

    modes = {
        "off": (hub, []),
        "once": (lambda port: hub(port) + ["--compression"], ["--deflate"]),
        "takeover": takeover(),
    }
    extra_modes = {
        "takeover-m1": takeover("--compression-memory-level", "1"),
        "takeover-w9": takeover("--compression-window-bits", "9"),
        "takeover-w9-m1": takeover("--compression-window-bits", "9", "--compression-memory-level", "1"),
    }
    uws = os.environ.get("UWS_ROOM_DEFLATE")
    if uws:
        modes["uws-off"] = (lambda port: ["env", "UWS_MODE=off", uws], [])
        for mode in ("shared", "prepared", "dedicated"):
            modes[f"uws-{mode}"] = (lambda port, mode=mode: ["env", f"UWS_MODE={mode}", uws], ["--deflate"])
    else:
        print("uWebSockets with compression: skipped (set UWS_ROOM_DEFLATE)")
    if args.modes:
        known = {**modes, **extra_modes}
        unknown = [m for m in args.modes.split(",") if m not in known]
        if unknown:
            raise SystemExit(f"unknown modes {unknown}; known: {', '.join(known)}")
        modes = {m: known[m] for m in args.modes.split(",")}
    counts = [int(n) for n in args.subscribers.split(",")]
    rows, port = [], 9800
    for rnd in range(args.rounds):
        for subs in counts:
            for mode, (command, extra) in modes.items():
                port += 1
                row = run_one(mode, command, port, subs, args.size, args.rate, args,
                              ["--text", "--filler", "json", *extra], cpu=cpu_seconds_fine, tolerate_missing=True)
                if row["errors"]:
                    raise SystemExit(f"{mode} {subs}: {row['errors']} errors")
                # Missing at the end: the server could not keep up (one core);
                # its figures stand, marked, with the share delivered.
                row["delivered"] = row["deliveries_per_sec"] / (args.rate * subs)
                if extra and row["deflate_negotiated"] != subs:
                    raise SystemExit(f"{mode} {subs}: {row['deflate_negotiated']} of {subs} negotiated deflate")
                rows.append(row)
                print(f"round {rnd + 1} {subs:>5} subscribers {mode:>13}: {row['us_per_publish']:8.1f} µs CPU/publish"
                      f"  {100 * row['delivered']:5.1f}% delivered"
                      f"  {row['wire_bytes_per_delivery']:7.1f} B/delivery  p50 {row['p50_us']:7.0f} µs"
                      f"  p99 {row['p99_us']:7.0f} µs  peak RSS {row['peak_rss_mib']:.1f} MiB", flush=True)
    print(f"\nmedians of {args.rounds} rounds; {args.size} B JSON-like text at {args.rate}/s "
          "(ratio = payload / wire bytes, frame headers counted)")
    print("| subscribers | compression | server CPU per publish | vs off | bytes on the wire per delivery | ratio "
          "| p50 | p99 | peak RSS | delivered |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for subs in counts:
        med = {}
        for mode in modes:
            mine = [r for r in rows if r["server"] == mode and r["subs"] == subs]
            med[mode] = {k: statistics.median(r[k] for r in mine)
                         for k in ("us_per_publish", "wire_bytes_per_delivery", "p50_us", "p99_us", "peak_rss_mib",
                                   "delivered")}
        for mode, m in med.items():
            off = med.get("uws-off" if mode.startswith("uws-") and "uws-off" in med else "off")
            vs = f"{m['us_per_publish'] / off['us_per_publish']:.2f}×" if off else "–"
            print(f"| {subs} | {mode} | {m['us_per_publish']:.1f} µs | {vs} | {m['wire_bytes_per_delivery']:.0f} B "
                  f"| {args.size / m['wire_bytes_per_delivery']:.2f} | {m['p50_us'] / 1000:.2f} ms "
                  f"| {m['p99_us'] / 1000:.2f} ms | {m['peak_rss_mib']:.1f} MiB | {100 * m['delivered']:.0f} % |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Side-by-side 1 -> N broadcast: one publisher at a fixed rate into a room
of N subscribers, on ringcast-hub and on the peers, interleaved A B A B.

Each server runs with one thread pinned to SERVER_CPU, ringcast-bench
(one thread) to CLIENT_CPU. For every run: deliveries/s, delivery latency
p50/p99 from the scheduled send time, server CPU per delivery (from
/proc/PID/stat over the measured window) and the server's peak RSS
(sampled every 50 ms). Both servers get the same backpressure budget.

    tools/bench/broadcast_compare.py [--rounds 3] [--seconds 5] \\
        [--case 1000x16384@50] [--case 10000x64@20] [--budget 16MiB] [--baseline DIR]

Peers: fastwebsockets' room (benches/peers), uWebSockets' uws_room when UWS_ROOM names it (built with
../shared/bench/uws/README.md; skipped, saying so, when unset), and with
--baseline DIR the ringcast-hub of another build (a before/after check).
"""
import argparse, json, os, signal, statistics, subprocess, tempfile, threading, time

from procstat import cpu_seconds, raise_nofile, rss_kib, stop_server, wait_port

# Benchmarks load the hub from one address as fast as they can: its
# per-connection publish rate and per-address limits are off (through the
# environment, which older builds of a before/after run ignore).
os.environ.setdefault("RINGCAST_MAX_PUBLISH_RATE", "0")
os.environ.setdefault("RINGCAST_MAX_CONNECTIONS_PER_IP", "0")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")


def hub_command(binary, budget):
    return lambda port: [binary, "--listen", f"127.0.0.1:{port}", "--shards", "1", "--max-connections", "30000",
                         "--max-backpressure", budget, "--max-message-size", "16MiB"]


def run_one(name, command, port, subs, size, rate, args, bench_extra=(), cpu=cpu_seconds, tolerate_missing=False,
            url=lambda port: f"ws://127.0.0.1:{port}/topics/bench"):
    server = subprocess.Popen(["taskset", "-c", args.server_cpu] + command(port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=dict(os.environ, PORT=str(port)), preexec_fn=raise_nofile)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(server.pid, missing=0))
            time.sleep(0.05)

    try:
        wait_port(port, server)
        rss0 = rss_kib(server.pid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out_json = os.path.join(tempfile.gettempdir(), f"broadcast_compare-{os.getpid()}-{port}.json")
        bench = subprocess.Popen(["taskset", "-c", args.client_cpu, f"{BIN}/ringcast-bench", "broadcast",
                                  "--url", url(port), "--subscribers", str(subs),
                                  "--publishers", "1", "--rate", str(rate), "--size", str(size),
                                  "--warmup", str(args.warmup), "--duration", str(args.seconds), "--json", out_json,
                                  *bench_extra],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=raise_nofile)
        # Connecting N subscribers takes a while: the window starts when the
        # bench says it is ready, after its warm-up.
        for line in bench.stdout:
            if line.startswith("ready"):
                break
        time.sleep(args.warmup + 0.2)
        c0, t0 = cpu(server.pid), time.monotonic()
        time.sleep(args.seconds - 0.4)
        c1, t1 = cpu(server.pid), time.monotonic()
        _, err = bench.communicate(timeout=args.seconds + 120)
        # Messages still missing at the end (a saturated server) fail the
        # bench; the caller may take the figures anyway and report it.
        saturated = tolerate_missing and "messages missing" in err and os.path.exists(out_json)
        if bench.returncode != 0 and not saturated:
            raise SystemExit(f"{name} {subs}x{size}@{rate}: ringcast-bench failed: {err.strip()[-400:]}")
        with open(out_json) as f:
            result = json.load(f)
        os.unlink(out_json)
    finally:
        stop.set()
        stop_server(server, signal.SIGTERM)
    busy = (c1 - c0) / (t1 - t0)
    deliveries = float(result.get("deliveries_per_sec", 0))
    publishes = float(result.get("rate_achieved", 0))
    return {
        "server": name, "subs": subs, "size": size, "rate": rate, "deliveries_per_sec": deliveries,
        "p50_us": result["latency_us"]["p50"], "p99_us": result["latency_us"]["p99"],
        "server_cpu": busy, "ns_per_delivery": busy * 1e9 / deliveries if deliveries else float("nan"),
        "peak_rss_mib": peak[0] / 1024, "rss_growth_mib": (peak[0] - rss0) / 1024,
        "lost": result.get("lost", 0), "errors": result.get("errors", 0),
        "missing": result.get("missing", 0), "publishes_per_sec": publishes,
        "us_per_publish": busy * 1e6 / max(publishes, 1e-9),
        "wire_bytes_per_delivery": float(result.get("wire_bytes_per_delivery", 0)),
        "deflate_negotiated": result.get("deflate_negotiated", 0),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--case", action="append", help="SUBSCRIBERSxSIZE@RATE, e.g. 1000x16384@50 (repeatable)")
    p.add_argument("--budget", default="16MiB", help="ringcast-hub --max-backpressure (uws_room has 16 MiB built in)")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--baseline", metavar="DIR", help="also run DIR/ringcast-hub as 'baseline'")
    p.add_argument("--json", metavar="FILE", help="write every run to FILE")
    args = p.parse_args()
    servers = {"ringcast": hub_command(f"{BIN}/ringcast-hub", args.budget)}
    if args.baseline:
        servers["baseline"] = hub_command(os.path.join(os.path.abspath(args.baseline), "ringcast-hub"), args.budget)
    servers["fastwebsockets"] = lambda port: [f"{BIN}/fastwebsockets-peer", f"127.0.0.1:{port}", "fanout"]
    uws = os.environ.get("UWS_ROOM")
    if uws:
        servers["uwebsockets"] = lambda port: [uws]
    else:
        print("uWebSockets: skipped (set UWS_ROOM to a uws_room built with ../shared/bench/uws/README.md)")
    cases = []
    for c in args.case or ["1000x16384@50", "10000x64@20"]:
        shape, rate = c.split("@")
        subs, size = shape.split("x")
        cases.append((int(subs), int(size), int(rate)))
    rows, port = [], 9700
    for rnd in range(args.rounds):
        for subs, size, rate in cases:
            for name, command in servers.items():
                port += 1
                row = run_one(name, command, port, subs, size, rate, args)
                row["round"] = rnd
                rows.append(row)
                print(f"round {rnd + 1} {subs}x{size}@{rate}/s {name:>12}: {row['deliveries_per_sec']:>10,.0f} deliveries/s"
                      f"  p50 {row['p50_us']:>8.0f} µs  p99 {row['p99_us']:>8.0f} µs  server CPU {row['server_cpu']:.3f}"
                      f"  {row['ns_per_delivery']:>6.0f} ns/delivery  peak RSS {row['peak_rss_mib']:.1f} MiB"
                      f"  lost {row['lost']}", flush=True)
    print("\nmedians (ratio = ringcast / server: CPU per delivery and peak RSS below 1 favour ringcast)")
    print("| case | server | deliveries/s | p50 µs | p99 µs | server CPU ns/delivery | ringcast / server CPU | "
          "peak RSS MiB | ringcast / server RSS | lost |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for subs, size, rate in cases:
        med = {}
        for name in servers:
            mine = [r for r in rows if r["server"] == name and (r["subs"], r["size"], r["rate"]) == (subs, size, rate)]
            med[name] = {k: statistics.median(r[k] for r in mine)
                         for k in ("deliveries_per_sec", "p50_us", "p99_us", "ns_per_delivery", "peak_rss_mib")}
            med[name]["lost"] = sum(r["lost"] for r in mine)
        for name in servers:
            m, base = med[name], med["ringcast"]
            cpu_ratio = "—" if name == "ringcast" else f"{base['ns_per_delivery'] / m['ns_per_delivery']:.2f}×"
            rss_ratio = "—" if name == "ringcast" else f"{base['peak_rss_mib'] / m['peak_rss_mib']:.2f}×"
            print(f"| {subs} × {size} B at {rate}/s | {name} | {m['deliveries_per_sec']:,.0f} | {m['p50_us']:.0f} | "
                  f"{m['p99_us']:.0f} | {m['ns_per_delivery']:.0f} | {cpu_ratio} | {m['peak_rss_mib']:.1f} | "
                  f"{rss_ratio} | {m['lost']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Side-by-side runs of ringcast and the peer servers (benches/peers), one
server at a time pinned to SERVER_CPU, ringcast-bench pinned to CLIENT_CPU,
in interleaved rounds (A B C D A B C D ...) so that machine noise spreads
over every server alike. Writes the medians, the ratios against ringcast
and an SVG chart into docs/benchmarks.md (between the compare markers),
docs/results/compare-DATE.{json,svg}.

    tools/compare.sh [--rounds 3] [--seconds 5] [--quick]

Each run also records the CPU time of the server and of the generator over
the measured window (from /proc/PID/stat), so every table shows whether the
generator or the server was the limit.
"""
import argparse, datetime, json, os, signal, statistics, subprocess, time

from procstat import cpu_seconds, stop_server, wait_port

# Benchmarks load the hub from one address as fast as they can: its
# per-connection publish rate and per-address limits are off (through the
# environment, which older builds of a before/after run ignore).
os.environ.setdefault("RINGCAST_MAX_PUBLISH_RATE", "0")
os.environ.setdefault("RINGCAST_MAX_CONNECTIONS_PER_IP", "0")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")

# name -> (command for mode, URL path for mode)
SERVERS = {
    "ringcast": {
        "echo": (lambda p: [f"{BIN}/examples/echo", "--listen", f"127.0.0.1:{p}", "--shards", "1"], "/"),
        "fanout": (lambda p: [f"{BIN}/ringcast-hub", "--listen", f"127.0.0.1:{p}", "--shards", "1"],
                   "/topics/bench?echo=1"),
    },
    "fastwebsockets": {m: (lambda p, m=m: [f"{BIN}/fastwebsockets-peer", f"127.0.0.1:{p}", m], "/")
                       for m in ("echo", "fanout")},
    "tokio-tungstenite": {m: (lambda p, m=m: [f"{BIN}/tungstenite-peer", f"127.0.0.1:{p}", m], "/")
                          for m in ("echo", "fanout")},
    "tokio-uring": {m: (lambda p, m=m: [f"{BIN}/tokio-uring-peer", f"127.0.0.1:{p}", m], "/")
                    for m in ("echo", "fanout")},
}

# uWebSockets cannot be built on a fresh machine (../shared/bench/uws/README.md
# builds it from fetched sources): its rows appear only when UWS_ECHO (echo
# cases) and UWS_ROOM (fan-out cases) name the binaries. They read their port
# from the environment; uws_room puts every connection, sender included, in
# one room, like the hub's /topics/bench?echo=1.
UWS = {mode: os.environ.get(var) for mode, var in (("echo", "UWS_ECHO"), ("fanout", "UWS_ROOM"))}
if any(UWS.values()):
    SERVERS["uwebsockets"] = {mode: (lambda p, b=binary: [b], "/") for mode, binary in UWS.items() if binary}

# (label, scenario, bench arguments, the JSON field that is the rate)
CASES = [
    ("echo 100 conns x 20 B", "echo", ["--connections", "100", "--size", "20"], "msgs_per_sec"),
    ("echo 500 conns x 16 KiB", "echo", ["--connections", "500", "--size", "16384"], "msgs_per_sec"),
    ("echo 1 conn x 20 B", "echo", ["--connections", "1", "--size", "20"], "msgs_per_sec"),
    ("fan-out 100 to 100 x 32 B", "fanout", ["--connections", "100", "--size", "32"], "deliveries_per_sec"),
    ("fan-out 500 to 500 x 32 B", "fanout", ["--connections", "500", "--size", "32"], "deliveries_per_sec"),
]


nan = float("nan")


def run_one(server, case, port, args):
    label, mode, extra, field = case
    command, path = SERVERS[server][mode]
    proc = subprocess.Popen(["taskset", "-c", args.server_cpu] + command(port), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PORT=str(port)))
    out_json = os.path.join(ROOT, "target", "compare", f"{server}-{mode}-{port}.json")
    try:
        wait_port(port, proc, tries=300)
        bench = subprocess.Popen(["taskset", "-c", args.client_cpu, f"{BIN}/ringcast-bench", mode,
                                  "--url", f"ws://127.0.0.1:{port}{path}", *extra,
                                  "--warmup", str(args.warmup), "--duration", str(args.seconds),
                                  "--json", out_json],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # CPU of both processes over the middle of the measured window.
        time.sleep(args.warmup + 0.3)
        s0, g0, t0 = cpu_seconds(proc.pid, gone=nan), cpu_seconds(bench.pid, gone=nan), time.monotonic()
        time.sleep(max(args.seconds - 0.6, 0.2))
        s1, g1, t1 = cpu_seconds(proc.pid, gone=nan), cpu_seconds(bench.pid, gone=nan), time.monotonic()
        _, err = bench.communicate(timeout=args.seconds + args.warmup + 120)
        if bench.returncode != 0:
            raise SystemExit(f"{server} {label}: ringcast-bench failed ({bench.returncode}): {err.strip()[-500:]}")
        with open(out_json) as f:
            result = json.load(f)
    finally:
        stop_server(proc)
    window = t1 - t0
    return {
        "server": server, "case": label, "rate": result[field], "p50_us": result["latency_us"]["p50"],
        "p99_us": result["latency_us"]["p99"], "errors": result["errors"],
        "server_cpu": (s1 - s0) / window, "generator_cpu": (g1 - g0) / window,
    }


def median(rows, key):
    values = [r[key] for r in rows]
    return statistics.median(values) if values else float("nan")


def chart(summary, servers, cases, path):
    """A grouped bar chart: per case, each server's median rate relative to
    ringcast (= 1.0). Plain SVG, no dependencies."""
    colors = ["#d6452f", "#3a78c2", "#59a14f", "#b07aa1", "#f28e2b"]
    width, left, top, bar, gap = 820, 220, 40, 16, 14
    height = top + len(cases) * (len(servers) * bar + gap) + 60
    scale_max = max([1.0] + [summary[(s, c)]["ratio"] for s in servers for c in cases
                             if (s, c) in summary]) * 1.1
    x = lambda v: left + (width - left - 40) * v / scale_max
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="{left}" y="20" font-size="14">Throughput relative to ringcast (1.0 = ringcast; higher is faster)</text>']
    y = top
    for case in cases:
        out.append(f'<text x="{left - 8}" y="{y + len(servers) * bar / 2 + 4}" text-anchor="end">{case}</text>')
        for i, server in enumerate(servers):
            s = summary.get((server, case))
            if s:
                out.append(f'<rect x="{left}" y="{y}" width="{x(s["ratio"]) - left:.1f}" height="{bar - 2}" fill="{colors[i % len(colors)]}"/>')
                out.append(f'<text x="{x(s["ratio"]) + 4:.1f}" y="{y + bar - 5}">{s["ratio"]:.2f}</text>')
            y += bar
        y += gap
    out.append(f'<line x1="{x(1.0):.1f}" y1="{top - 5}" x2="{x(1.0):.1f}" y2="{y}" stroke="#333" stroke-dasharray="4 3"/>')
    lx = left
    for i, server in enumerate(servers):
        out.append(f'<rect x="{lx}" y="{y + 15}" width="12" height="12" fill="{colors[i % len(colors)]}"/>')
        out.append(f'<text x="{lx + 16}" y="{y + 25}">{server}</text>')
        lx += 150
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--servers", nargs="+", default=list(SERVERS))
    p.add_argument("--cases", nargs="+", type=int, help="case numbers (0-based) to run")
    p.add_argument("--quick", action="store_true", help="1 round of 2 s: checks that everything runs")
    p.add_argument("--no-docs", action="store_true", help="print only, do not touch docs/")
    p.add_argument("--json", metavar="FILE", help="also write every run to FILE")
    p.add_argument("--baseline", metavar="DIR",
                   help="also run the echo example and ringcast-hub of another build (its target/release), as "
                        "'baseline': a before/after check of a change, side by side")
    args = p.parse_args()
    if args.baseline:
        base = os.path.abspath(args.baseline)
        SERVERS["baseline"] = {
            "echo": (lambda p: [f"{base}/examples/echo", "--listen", f"127.0.0.1:{p}", "--shards", "1"], "/"),
            "fanout": (lambda p: [f"{base}/ringcast-hub", "--listen", f"127.0.0.1:{p}", "--shards", "1"],
                       "/topics/bench?echo=1"),
        }
        if "baseline" not in args.servers:
            args.servers.append("baseline")
    if args.quick:
        args.rounds, args.seconds, args.warmup = 1, 2.0, 0.5
    cases = [CASES[i] for i in args.cases] if args.cases else CASES
    for mode, var in (("echo", "UWS_ECHO"), ("fanout", "UWS_ROOM")):
        if not UWS[mode] and any(c[1] == mode for c in cases):
            print(f"uWebSockets {mode}: skipped (set {var} to the binary built with ../shared/bench/uws/README.md)")
    os.makedirs(os.path.join(ROOT, "target", "compare"), exist_ok=True)
    rows, port = [], 9400
    load = os.getloadavg()[0]
    for rnd in range(args.rounds):
        for case in cases:
            for server in args.servers:
                if case[1] not in SERVERS[server]:
                    continue
                port += 1
                row = run_one(server, case, port, args)
                row["round"] = rnd
                rows.append(row)
                print(f"round {rnd + 1} {case[0]:<26} {server:<18} {row['rate']:>12,.0f}/s  p50 {row['p50_us']:>9.1f} µs"
                      f"  server CPU {row['server_cpu']:.2f}  generator CPU {row['generator_cpu']:.2f}  errors {row['errors']}",
                      flush=True)
    load = max(load, os.getloadavg()[0])
    summary = {}
    for case in cases:
        base_rows = [r for r in rows if r["server"] == "ringcast" and r["case"] == case[0]]
        base = median(base_rows, "rate") if base_rows else float("nan")
        for server in args.servers:
            mine = [r for r in rows if r["server"] == server and r["case"] == case[0]]
            if not mine:
                continue
            rate = median(mine, "rate")
            summary[(server, case[0])] = {
                "rate": rate, "ratio": rate / base if base else float("nan"),
                "p50_us": median(mine, "p50_us"), "p99_us": median(mine, "p99_us"),
                "server_cpu": median(mine, "server_cpu"), "generator_cpu": median(mine, "generator_cpu"),
                "runs": [round(r["rate"]) for r in mine], "errors": sum(r["errors"] for r in mine),
            }
    lines = [f"Rounds: {args.rounds} × {args.seconds:g} s (warm-up {args.warmup:g} s), interleaved; server on CPU "
             f"{args.server_cpu}, ringcast-bench (one thread) on CPU {args.client_cpu}; load average up to {load:.2f} "
             f"during the runs. Rate = median of the rounds; ratio = ringcast / peer (above 1: ringcast is faster); "
             f"CPU = share of one core over the measured window (median).", ""]
    for case in cases:
        label = case[0]
        lines.append(f"**{label}**" + (" (deliveries/s)" if case[1] == "fanout" else " (echoes/s)"))
        lines.append("")
        lines.append("| server | rate | ringcast / server | p50 µs | p99 µs | server CPU | generator CPU | runs |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for server in args.servers:
            s = summary.get((server, label))
            if s is None:
                continue
            ratio = "—" if server == "ringcast" else f"{1 / s['ratio']:.2f}×" if s["ratio"] else "n/a"
            lines.append(f"| {server} | {s['rate']:,.0f} | {ratio} | {s['p50_us']:.1f} | {s['p99_us']:.1f} | "
                         f"{s['server_cpu']:.2f} | {s['generator_cpu']:.2f} | {', '.join(f'{v:,}' for v in s['runs'])} |")
        lines.append("")
    table = "\n".join(lines)
    print("\n" + table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "load_average_max": load, "rounds": args.rounds, "seconds": args.seconds}, f, indent=1)
    if any(s["errors"] for s in summary.values()):
        raise SystemExit("some runs reported errors")
    if args.no_docs:
        return
    day = datetime.date.today().isoformat()
    results = os.path.join(ROOT, "docs", "results")
    os.makedirs(results, exist_ok=True)
    svg = os.path.join(results, f"compare-{day}.svg")
    chart(summary, args.servers, [c[0] for c in cases], svg)
    with open(os.path.join(results, f"compare-{day}.json"), "w") as f:
        json.dump({"rows": rows, "load_average_max": load, "rounds": args.rounds, "seconds": args.seconds}, f, indent=1)
    doc = os.path.join(ROOT, "docs", "benchmarks.md")
    text = open(doc).read()
    begin, end = "<!-- compare:begin -->", "<!-- compare:end -->"
    block = f"{begin}\n{table}\n![throughput relative to ringcast](results/compare-{day}.svg)\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text += f"\n## Side by side with other servers (tools/compare.sh)\n\n{block}\n"
    open(doc, "w").write(text)
    print(f"wrote docs/benchmarks.md, {os.path.relpath(svg, ROOT)}")


if __name__ == "__main__":
    main()

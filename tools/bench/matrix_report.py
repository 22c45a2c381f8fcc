#!/usr/bin/env python3
"""Turns the raw outputs of the side-by-side runs into the tables and charts
of docs/benchmarks.md ("Fast at every load"):

  echo      the JSON of tools/bench/echo_compare.py --json (the matrix of
            connections x sizes, servers ringcast, tcp_floor, uwebsockets,
            fastwebsockets): a table per size and a heat map of
            ringcast / uWebSockets messages/s, with the cells below target
            marked;
  fanout    the JSON of tools/bench/compare.py (N-to-N rooms) and of
            tools/bench/broadcast_compare.py --json (1 -> N): a table each
            and a bar chart of server CPU per delivery.

    tools/bench/matrix_report.py --echo docs/results/echo-matrix-DAY.json \\
        [--rooms docs/results/rooms-DAY.json] [--broadcast docs/results/broadcast-DAY.json] \\
        --svg-prefix docs/results/matrix-DAY

Prints the Markdown; the SVGs are written next to the JSON files.
"""
import argparse, json, math, os, statistics

TARGET_RATE, TARGET_P50, TARGET_FLOOR = 1.0, 1.1, 0.95


def medians(runs, keys):
    out = {}
    groups = {}
    for r in runs:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    for key, rs in groups.items():
        out[key] = {f: statistics.median(r[f] for r in rs if r[f] is not None)
                    for f in ("rate", "cpu_us", "p50_us", "p99_us") if any(r[f] is not None for r in rs)}
        out[key]["runs"] = len(rs)
    return out


def size_label(size):
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def heatmap(path, title, rows, cols, value, fmt="{:.2f}"):
    """A grid of colored cells: green above 1, red below, white at 1."""
    cell_w, cell_h, left, top = 90, 30, 110, 50
    width, height = left + cell_w * len(cols) + 20, top + cell_h * len(rows) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="10" y="20" font-size="14">{title}</text>']
    for j, c in enumerate(cols):
        out.append(f'<text x="{left + j * cell_w + cell_w / 2}" y="{top - 8}" text-anchor="middle">{size_label(c)}</text>')
    for i, r in enumerate(rows):
        out.append(f'<text x="{left - 8}" y="{top + i * cell_h + 20}" text-anchor="end">{r} conn</text>')
        for j, c in enumerate(cols):
            v = value(r, c)
            if v is None or math.isnan(v):
                color, text = "#eee", "–"
            else:
                t = max(-1.0, min(1.0, math.log(v) / math.log(1.5)))
                if t >= 0:
                    color = f"rgb({int(255 - 155 * t)},{int(255 - 55 * t)},{int(255 - 155 * t)})"
                else:
                    color = f"rgb(255,{int(255 + 155 * t)},{int(255 + 155 * t)})"
                text = fmt.format(v)
            x, y = left + j * cell_w, top + i * cell_h
            out.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{color}"/>')
            out.append(f'<text x="{x + cell_w / 2 - 1}" y="{y + 19}" text-anchor="middle">{text}</text>')
    out.append(f'<text x="10" y="{height - 8}" fill="#555">green: ringcast ahead, red: behind (1.0 = even)</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def bars(path, title, groups, unit):
    """Grouped horizontal bars: {group: {server: value}}."""
    colors = {"ringcast": "#d6452f", "uwebsockets": "#3a78c2", "fastwebsockets": "#59a14f", "baseline": "#999"}
    servers = sorted({s for g in groups.values() for s in g}, key=lambda s: list(colors).index(s) if s in colors else 9)
    bar, gap, left, top, width = 16, 14, 230, 40, 760
    height = top + len(groups) * (len(servers) * bar + gap) + 50
    vmax = max(v for g in groups.values() for v in g.values()) * 1.15
    x = lambda v: left + (width - left - 60) * v / vmax
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="10" y="20" font-size="14">{title}</text>']
    y = top
    for name, values in groups.items():
        out.append(f'<text x="{left - 8}" y="{y + len(servers) * bar / 2 + 4}" text-anchor="end">{name}</text>')
        for s in servers:
            if s in values:
                v = values[s]
                out.append(f'<rect x="{left}" y="{y}" width="{x(v) - left:.1f}" height="{bar - 2}" fill="{colors.get(s, "#b07aa1")}"/>')
                out.append(f'<text x="{x(v) + 4:.1f}" y="{y + bar - 5}">{v:,.0f} {unit}</text>')
            y += bar
        y += gap
    lx = left
    for s in servers:
        out.append(f'<rect x="{lx}" y="{y + 10}" width="12" height="12" fill="{colors.get(s, "#b07aa1")}"/>')
        out.append(f'<text x="{lx + 16}" y="{y + 20}">{s}</text>')
        lx += 140
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def echo_section(path, prefix, rerun=None):
    data = json.load(open(path))
    for path in rerun or []:
        # Cells measured again (after a change of default, or with more
        # rounds): their runs replace the earlier files'.
        again = json.load(open(path))["runs"]
        cells = {(r["connections"], r["size"]) for r in again}
        data["runs"] = [r for r in data["runs"] if (r["connections"], r["size"]) not in cells] + again
    med = medians(data["runs"], ("connections", "size", "server"))
    conns = sorted({k[0] for k in med})
    sizes = sorted({k[1] for k in med})
    get = lambda c, s, server, f: med.get((c, s, server), {}).get(f, float("nan"))
    lines, below, ratios = [], [], []
    for s in sizes:
        lines += [f"**Echo, {size_label(s)} messages** (messages/s, medians of the interleaved rounds, "
                  f"{data['seconds']:g} s each)", "",
                  "| connections | ringcast | p50 / p99 µs | CPU µs/echo | uWebSockets | p50 µs | fastwebsockets | TCP floor | "
                  "ringcast / uWS | p50 ringcast / uWS | ringcast / floor |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in conns:
            r, u, fw, fl = (get(c, s, n, "rate") for n in ("ringcast", "uwebsockets", "fastwebsockets", "tcp_floor"))
            rp50, up50 = get(c, s, "ringcast", "p50_us"), get(c, s, "uwebsockets", "p50_us")
            vs_uws, p50_ratio, vs_floor = r / u, rp50 / up50, r / fl
            ratios.append(vs_uws)
            marks = []
            if vs_uws < TARGET_RATE:
                marks.append("rate")
            if p50_ratio > TARGET_P50:
                marks.append("p50")
            if vs_floor < TARGET_FLOOR:
                marks.append("floor")
            if marks:
                below.append((c, s, marks, vs_uws, p50_ratio, vs_floor))
            flag = lambda ok, text: text if ok else f"**{text}**"
            lines.append(
                f"| {c} | {r:,.0f} | {rp50:.0f} / {get(c, s, 'ringcast', 'p99_us'):.0f} | {get(c, s, 'ringcast', 'cpu_us'):.2f} | "
                f"{u:,.0f} | {up50:.0f} | {fw:,.0f} | {fl:,.0f} | {flag(vs_uws >= TARGET_RATE, f'{vs_uws:.2f}×')} | "
                f"{flag(p50_ratio <= TARGET_P50, f'{p50_ratio:.2f}×')} | {flag(vs_floor >= TARGET_FLOOR, f'{vs_floor:.2f}×')} |")
        lines.append("")
    geo = math.exp(statistics.mean(math.log(x) for x in ratios if x > 0 and not math.isnan(x)))
    lines.append(f"Geometric mean of ringcast / uWebSockets messages/s over the {len(ratios)} cells: **{geo:.2f}×**. "
                 f"Bold: below target (≥ 1.0× uWebSockets' rate, p50 ≤ 1.1× its p50, ≥ 0.95× the TCP floor).")
    lines.append("")
    svg = f"{prefix}-echo-vs-uws.svg"
    heatmap(svg, "Echo: ringcast / uWebSockets messages/s (medians)", conns, sizes,
            lambda c, s: get(c, s, "ringcast", "rate") / get(c, s, "uwebsockets", "rate"))
    svg2 = f"{prefix}-echo-vs-floor.svg"
    heatmap(svg2, "Echo: ringcast / TCP floor on the same runtime", conns, sizes,
            lambda c, s: get(c, s, "ringcast", "rate") / get(c, s, "tcp_floor", "rate"))
    lines += [f"![ringcast / uWebSockets]({os.path.basename(svg)})", "",
              f"![ringcast / TCP floor]({os.path.basename(svg2)})", ""]
    return lines, below, geo


def rooms_section(path, prefix):
    data = json.load(open(path))
    rows = data["rows"]
    groups = {}
    for r in rows:
        groups.setdefault((r["case"], r["server"]), []).append(r)
    lines = ["**N-to-N rooms** (every connection publishes into one room and receives every message; deliveries/s)", "",
             "| case | server | deliveries/s | server CPU ns/delivery | p99 µs | ringcast / server |", "|---|---|---|---|---|---|"]
    chart = {}
    cases = list(dict.fromkeys(r["case"] for r in rows))
    for case in cases:
        base = statistics.median(r["rate"] for r in groups[(case, "ringcast")])
        for server in dict.fromkeys(r["server"] for r in rows):
            rs = groups.get((case, server))
            if not rs:
                continue
            rate = statistics.median(r["rate"] for r in rs)
            ns = statistics.median(r["server_cpu"] * 1e9 / r["rate"] for r in rs)
            p99 = statistics.median(r["p99_us"] for r in rs)
            chart.setdefault(case, {})[server] = ns
            ratio = "—" if server == "ringcast" else f"{base / rate:.2f}×"
            lines.append(f"| {case} | {server} | {rate:,.0f} | {ns:.0f} | {p99:.0f} | {ratio} |")
    lines.append("")
    svg = f"{prefix}-rooms-cpu.svg"
    bars(svg, "N-to-N rooms: server CPU per delivery (ns, lower is better)", chart, "ns")
    lines += [f"![rooms CPU per delivery]({os.path.basename(svg)})", ""]
    return lines


def broadcast_section(path, prefix):
    rows = json.load(open(path))
    lines = ["**1 → N broadcast** (one publisher at a fixed rate)", "",
             "| case | server | deliveries/s | server CPU ns/delivery | p50 / p99 µs | peak RSS MiB | "
             "ringcast / server CPU | ringcast / server RSS |", "|---|---|---|---|---|---|---|---|"]
    groups, chart = {}, {}
    for r in rows:
        groups.setdefault((r["subs"], r["size"], r["rate"]), {}).setdefault(r["server"], []).append(r)
    for (subs, size, rate), by_server in groups.items():
        med = {s: {k: statistics.median(r[k] for r in rs) for k in
                   ("deliveries_per_sec", "ns_per_delivery", "p50_us", "p99_us", "peak_rss_mib")}
               for s, rs in by_server.items()}
        name = f"1 → {subs:,} × {size_label(size)} at {rate}/s"
        for s, m in med.items():
            base = med["ringcast"]
            cpu = "—" if s == "ringcast" else f"{base['ns_per_delivery'] / m['ns_per_delivery']:.2f}×"
            rss = "—" if s == "ringcast" else f"{base['peak_rss_mib'] / m['peak_rss_mib']:.2f}×"
            chart.setdefault(name, {})[s] = m["ns_per_delivery"]
            lines.append(f"| {name} | {s} | {m['deliveries_per_sec']:,.0f} | {m['ns_per_delivery']:.0f} | "
                         f"{m['p50_us']:,.0f} / {m['p99_us']:,.0f} | {m['peak_rss_mib']:.1f} | {cpu} | {rss} |")
    lines.append("")
    svg = f"{prefix}-broadcast-cpu.svg"
    bars(svg, "1 → N broadcast: server CPU per delivery (ns, lower is better)", chart, "ns")
    lines += [f"![broadcast CPU per delivery]({os.path.basename(svg)})", ""]
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--echo")
    p.add_argument("--echo-rerun", action="append",
                   help="echo cells measured again; they replace those of --echo (repeatable, later files win)")
    p.add_argument("--rooms")
    p.add_argument("--broadcast")
    p.add_argument("--svg-prefix", required=True)
    args = p.parse_args()
    lines = []
    if args.echo:
        echo_lines, below, geo = echo_section(args.echo, args.svg_prefix, args.echo_rerun)
        lines += echo_lines
        if below:
            lines.append("Cells below target: " + "; ".join(
                f"{c} × {size_label(s)} ({', '.join(m)}: {r:.2f}× / p50 {p:.2f}× / floor {f:.2f}×)"
                for c, s, m, r, p, f in below) + ".")
            lines.append("")
    if args.rooms:
        lines += rooms_section(args.rooms, args.svg_prefix)
    if args.broadcast:
        lines += broadcast_section(args.broadcast, args.svg_prefix)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

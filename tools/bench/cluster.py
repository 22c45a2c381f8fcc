#!/usr/bin/env python3
"""Delivery across hubs through NATS, beside delivery within one hub.

  bridged   hub A and hub B (1 shard each) joined by one nats-server; one
            publisher on A, --subscribers on B (ringcast-bench broadcast
            --publish-url).
  one hub   hub B alone (no --nats); publisher and subscribers on it.

At each --rates value (messages per second), the two setups alternate
(A B A B) over --rounds. The servers (NATS, A, B) are pinned to
SERVER_CPU, the load generator to CLIENT_CPU: this machine has two cores.
Reported per setup and rate, medians over the rounds: deliveries/s,
latency p50/p99/p99.9 from the intended send time, server CPU per
delivery (hub B's own, and NATS + A + B together), missing and reordered.

    tools/bench/cluster.py [--rounds 3] [--seconds 5] [--rates 100 1000] [--json FILE]
"""
import argparse, json, os, shutil, statistics, subprocess, tempfile, time

from procstat import cpu_seconds, raise_nofile, stop_server, wait_port

# Benchmarks load the hub from one address as fast as they can: its
# per-connection publish rate and per-address limits are off.
os.environ.setdefault("RINGCAST_MAX_PUBLISH_RATE", "0")
os.environ.setdefault("RINGCAST_MAX_CONNECTIONS_PER_IP", "0")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")
NATS_PORT, HUB_A, HUB_B = 9611, 9612, 9613


def start(cpu, *command):
    return subprocess.Popen(["taskset", "-c", cpu, *command], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, preexec_fn=raise_nofile)


def hub(cpu, port, *extra):
    proc = start(cpu, f"{BIN}/ringcast-hub", "--listen", f"127.0.0.1:{port}", "--shards", "1",
                 "--max-connections", "30000", *extra)
    wait_port(port, proc)
    return proc


def metric(port, name):
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.split("{")[0].split(" ")[0] == name)


def run_once(args, setup, rate):
    procs = {}
    try:
        if setup == "bridged":
            nats = shutil.which("nats-server") or "/usr/sbin/nats-server"
            procs["nats"] = start(args.server_cpu, nats, "-a", "127.0.0.1", "-p", str(NATS_PORT))
            wait_port(NATS_PORT, procs["nats"])
            url = f"nats://127.0.0.1:{NATS_PORT}"
            procs["a"] = hub(args.server_cpu, HUB_A, "--nats", url)
            procs["b"] = hub(args.server_cpu, HUB_B, "--nats", url)
            for port in (HUB_A, HUB_B):
                for _ in range(100):
                    if metric(port, "ringcast_bridge_connected") == 1:
                        break
                    time.sleep(0.05)
            publish_port = HUB_A
        else:
            procs["b"] = hub(args.server_cpu, HUB_B)
            publish_port = HUB_B
        out_json = os.path.join(tempfile.gettempdir(), f"cluster-{os.getpid()}.json")
        if os.path.exists(out_json):
            os.unlink(out_json)
        client = subprocess.Popen(
            ["taskset", "-c", args.client_cpu, f"{BIN}/ringcast-bench", "broadcast",
             "--url", f"ws://127.0.0.1:{HUB_B}/topics/bench",
             "--publish-url", f"ws://127.0.0.1:{publish_port}/topics/bench",
             "--subscribers", str(args.subscribers), "--rate", str(rate), "--size", str(args.size),
             "--warmup", str(args.warmup), "--duration", str(args.seconds), "--json", out_json],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=raise_nofile)
        ready = client.stdout.readline()
        if not ready.startswith("ready"):
            raise SystemExit(f"{setup}: {ready}{client.stderr.read()}")
        time.sleep(args.warmup + 0.2)
        cpu0 = {name: cpu_seconds(p.pid) for name, p in procs.items()}
        time.sleep(args.seconds - 0.4)
        cpu1 = {name: cpu_seconds(p.pid) for name, p in procs.items()}
        _, err = client.communicate(timeout=args.seconds + 120)
        with open(out_json) as f:
            r = json.load(f)
        window = args.seconds - 0.4
        deliveries = float(r["deliveries_per_sec"])
        busy = {name: (cpu1[name] - cpu0[name]) / window for name in procs}
        r["cpu"] = busy
        r["ns_per_delivery_b"] = busy["b"] * 1e9 / deliveries if deliveries else None
        r["ns_per_delivery_all"] = sum(busy.values()) * 1e9 / deliveries if deliveries else None
        if setup == "bridged":
            r["bridge_lost"] = metric(HUB_A, "ringcast_bridge_lost_total")
        r["bench_status"] = client.returncode
        r["bench_stderr"] = err.strip()[-300:]
        return r
    finally:
        for p in procs.values():
            stop_server(p, timeout=10)


def median(rs, get):
    values = [get(r) for r in rs if get(r) is not None]
    return statistics.median(values) if values else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--warmup", type=float, default=1)
    p.add_argument("--rates", type=float, nargs="+", default=[100, 1000])
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--json", help="write every run and the medians to this file")
    args = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ringcast-hub", "-p", "ringcast-bench"], cwd=ROOT,
                   check=True)
    runs = {}
    for rnd in range(args.rounds):
        for rate in args.rates:
            for setup in ("bridged", "one hub"):
                r = run_once(args, setup, rate)
                runs.setdefault((setup, rate), []).append(r)
                lat = r["latency_us"]
                print(f"round {rnd + 1} {setup:8} {rate:>6.0f} msg/s: {float(r['deliveries_per_sec']):>10,.0f} deliveries/s, "
                      f"p50 {lat['p50']} us, p99 {lat['p99']} us, p99.9 {lat['p999']} us; "
                      f"CPU hub B {r['cpu']['b']:.3f}, all {sum(r['cpu'].values()):.3f} core; "
                      f"{r['ns_per_delivery_b']:.0f} / {r['ns_per_delivery_all']:.0f} ns per delivery; "
                      f"missing {r['missing']}, reordered {r['reordered']}"
                      f"{', bridge lost ' + str(int(r['bridge_lost'])) if 'bridge_lost' in r else ''}", flush=True)
    summary = []
    print("\nmedians:")
    for (setup, rate), rs in runs.items():
        row = {
            "setup": setup, "rate": rate, "rounds": len(rs),
            "deliveries_per_sec": median(rs, lambda r: float(r["deliveries_per_sec"])),
            "p50_us": median(rs, lambda r: r["latency_us"]["p50"]),
            "p99_us": median(rs, lambda r: r["latency_us"]["p99"]),
            "p999_us": median(rs, lambda r: r["latency_us"]["p999"]),
            "ns_per_delivery_hub_b": median(rs, lambda r: r["ns_per_delivery_b"]),
            "ns_per_delivery_all_servers": median(rs, lambda r: r["ns_per_delivery_all"]),
            "missing": sum(int(r["missing"]) for r in rs),
            "reordered": sum(int(r["reordered"]) for r in rs),
        }
        summary.append(row)
        print(f"{setup:8} {rate:>6.0f} msg/s: {row['deliveries_per_sec']:>10,.0f} deliveries/s, p50 {row['p50_us']} us, "
              f"p99 {row['p99_us']} us, p99.9 {row['p999_us']} us, {row['ns_per_delivery_hub_b']:.0f} ns/delivery hub B, "
              f"{row['ns_per_delivery_all_servers']:.0f} ns all servers; missing {row['missing']}, reordered {row['reordered']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "medians": summary,
                       "runs": {f"{s} {r}": rs for (s, r), rs in runs.items()}}, f, indent=1)


if __name__ == "__main__":
    main()

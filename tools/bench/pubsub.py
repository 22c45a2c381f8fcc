#!/usr/bin/env python3
"""Pub/sub figures for ringcast-hub, measured with ringcast-bench.

The hub runs with one shard pinned to SERVER_CPU, the load generator (one
thread) pinned to CLIENT_CPU. Three scenarios:

  fanout     N clients in one room, each with one message in flight, every
             message reaching all N (deliveries/s, server CPU per delivery);
             N = 100 and 500, interleaved over --rounds, medians.
  broadcast  1 publisher at a fixed rate to 10 000 subscribers: delivery
             latency p50/p99/p99.9 from the scheduled send time.
  slow       10 000 subscribers, 10 % never read (4 KiB receive buffers),
             --max-backpressure 64KiB, both slow-consumer policies: server
             RSS sampled every 100 ms against the bound
             RSS(connected) + stalled x budget + --slack-mib (16); the
             script exits 1 when a peak is over it.

    tools/bench/pubsub.py [--rounds 3] [--seconds 5] [--only fanout|broadcast|slow]
"""
import argparse, json, os, re, signal, socket, statistics, subprocess, tempfile, threading, time, urllib.request

from procstat import cpu_seconds, raise_nofile, rss_kib

# Benchmarks load the hub from one address as fast as they can: its
# per-connection publish rate and per-address limits are off (through the
# environment, which older builds of a before/after run ignore).
os.environ.setdefault("RINGCAST_MAX_PUBLISH_RATE", "0")
os.environ.setdefault("RINGCAST_MAX_CONNECTIONS_PER_IP", "0")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(int(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name))


class Hub:
    def __init__(self, port, cpu, *extra):
        self.port = port
        self.proc = subprocess.Popen(["taskset", "-c", cpu, f"{BIN}/ringcast-hub", "--listen", f"127.0.0.1:{port}",
                                      "--shards", "1", "--max-connections", "30000", *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=raise_nofile)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise SystemExit("the hub did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def json_path(name):
    return os.path.join(tempfile.gettempdir(), f"pubsub-{os.getpid()}-{name}.json")


def bench(cpu, json_file, *args):
    """Starts ringcast-bench writing its result to json_file."""
    if os.path.exists(json_file):
        os.unlink(json_file)
    return subprocess.Popen(["taskset", "-c", cpu, f"{BIN}/ringcast-bench", *args, "--json", json_file],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=raise_nofile)


def result(json_file):
    """The JSON object ringcast-bench wrote ({} if none)."""
    try:
        with open(json_file) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def parse(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def fanout(args):
    results = {100: [], 500: []}
    for rnd in range(args.rounds):
        for n in results:
            hub = Hub(9501, args.server_cpu)
            try:
                out_json = json_path(f"fanout-{n}")
                client = bench(args.client_cpu, out_json, "fanout", "--url", f"ws://127.0.0.1:9501/topics/f?echo=1",
                               "--connections", str(n), "--warmup", str(args.warmup), "--duration", str(args.seconds))
                time.sleep(args.warmup + 0.3)
                cpu0 = cpu_seconds(hub.proc.pid)
                time.sleep(args.seconds - 0.6)
                cpu1 = cpu_seconds(hub.proc.pid)
                out, err = client.communicate(timeout=args.seconds + 60)
                if client.returncode != 0:
                    raise SystemExit(f"fanout N={n}: {err.strip()}")
                r = result(out_json)
                rate = float(r["deliveries_per_sec"])
                busy = (cpu1 - cpu0) / (args.seconds - 0.6)
                r["server_cpu"] = busy
                r["ns_per_delivery"] = busy * 1e9 / rate
                results[n].append(r)
                print(f"round {rnd + 1} N={n}: {rate:,.0f} deliveries/s, {float(r['publishes_per_sec']):,.0f} publishes/s, "
                      f"server CPU {busy:.2f} core, {r['ns_per_delivery']:.0f} ns/delivery, "
                      f"latency p50 {r['latency_us']['p50']} us p99 {r['latency_us']['p99']} us", flush=True)
            finally:
                hub.stop()
    for n, rs in results.items():
        rates = [float(r["deliveries_per_sec"]) for r in rs]
        print(f"fanout N={n}: median {statistics.median(rates):,.0f} deliveries/s "
              f"(runs: {', '.join(f'{x:,.0f}' for x in rates)}), median "
              f"{statistics.median(r['ns_per_delivery'] for r in rs):.0f} ns server CPU per delivery, "
              f"p50 {statistics.median(r['latency_us']['p50'] for r in rs):.0f} us, "
              f"p99 {statistics.median(r['latency_us']['p99'] for r in rs):.0f} us")


def broadcast(args):
    for rate in args.rates:
        hub = Hub(9502, args.server_cpu)
        try:
            out_json = json_path("broadcast")
            client = bench(args.client_cpu, out_json, "broadcast", "--url", "ws://127.0.0.1:9502/topics/b",
                           "--subscribers", "10000", "--rate", str(rate), "--size", "64",
                           "--warmup", str(args.warmup), "--duration", str(args.seconds))
            out, err = client.communicate(timeout=args.seconds + 120)
            if client.returncode != 0:
                raise SystemExit(f"broadcast rate={rate}: {err.strip()}")
            r = result(out_json)
            lat = r["latency_us"]
            print(f"broadcast 1 -> 10000 at {rate} msg/s ({float(r['deliveries_per_sec']):,.0f} deliveries/s): "
                  f"p50 {lat['p50']} us, p99 {lat['p99']} us, p99.9 {lat['p999']} us, max {lat['max']} us; "
                  f"{r['deliveries']}/{r['expected']} delivered", flush=True)
        finally:
            hub.stop()


def slow(args):
    budget = 64 << 10
    over = []
    for policy in args.policies:
        hub = Hub(9503, args.server_cpu, "--max-backpressure", "64KiB", "--slow-consumer", policy)
        samples, stop = [], threading.Event()
        try:
            out_json = json_path(f"slow-{policy}")
            client = bench(args.client_cpu, out_json, "broadcast", "--url", "ws://127.0.0.1:9503/topics/s",
                           "--subscribers", "10000", "--stalled", "0.1", "--rate", str(args.slow_rate),
                           "--size", str(args.slow_size), "--warmup", "1", "--duration", str(args.slow_seconds))
            ready = client.stdout.readline()
            if not ready.startswith("ready"):
                raise SystemExit(f"slow: {ready}{client.stderr.read()}")
            base = rss_kib(hub.proc.pid, missing=0)
            stalled = int(parse(ready)["stalled"])

            def sample():
                while not stop.wait(0.1):
                    samples.append(rss_kib(hub.proc.pid, missing=0))
            threading.Thread(target=sample, daemon=True).start()
            out, err = client.communicate(timeout=args.slow_seconds + 120)
            stop.set()
            dropped = metric(hub.port, "ringcast_dropped_total")
            closed = metric(hub.port, 'ringcast_closes_total{shard="0",code="1008"}')
            r = result(out_json)
            peak = max(samples) if samples else base
            bound = base + stalled * budget // 1024 + args.slack_mib * 1024
            if peak > bound:
                over.append(policy)
            print(f"slow ({policy}): RSS connected {base / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
                  f"bound {bound / 1024:.1f} MiB (connected + {stalled} x 64 KiB + {args.slack_mib} MiB): "
                  f"{'within' if peak <= bound else 'OVER'}; readers got {r.get('deliveries', '?')}/{r.get('expected', '?')}"
                  f", p99 {r.get('latency_us', {}).get('p99', '?')} us; dropped {dropped}, closed with 1008 {closed}"
                  f"{'; ' + err.strip() if client.returncode else ''}", flush=True)
        finally:
            stop.set()
            hub.stop()
    if over:
        raise SystemExit(f"slow: peak RSS over the bound with the {' and '.join(over)} policy")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--warmup", type=float, default=1)
    p.add_argument("--rates", type=float, nargs="+", default=[10, 50])
    p.add_argument("--slow-rate", type=float, default=10)
    p.add_argument("--slow-seconds", type=float, default=120)
    p.add_argument("--slow-size", type=int, default=4096)
    p.add_argument("--slack-mib", type=int, default=16, help="slow: what the bound allows above connected + stalled x budget")
    p.add_argument("--policies", nargs="+", choices=["drop", "close"], default=["drop", "close"])
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--only", choices=["fanout", "broadcast", "slow"])
    args = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ringcast-hub", "-p", "ringcast-bench"], cwd=ROOT, check=True)
    print(f"machine: {os.cpu_count()} CPUs, {open('/proc/loadavg').read().split()[0]} load; hub on CPU {args.server_cpu}, "
          f"load generator on CPU {args.client_cpu}", flush=True)
    for name, fn in (("fanout", fanout), ("broadcast", broadcast), ("slow", slow)):
        if args.only in (None, name):
            fn(args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""History on the hub: what it costs a publish, how fast a recovery
replays, and what a kept message costs in memory.

1. Publish cost: one publisher at a fixed rate into a room of N
   subscribers (ringcast-bench broadcast, 1 KiB JSON-like text), the hub
   with history off and on (`--history-size 1000`), and, when nats-server
   is installed, on a NATS node without history and with it in JetStream
   (`-js`). Server CPU per publish is the hub's (the scheduler's nanosecond
   account of its threads), not NATS's; rounds interleaved (A B C D A B C D),
   medians.
2. Replay and memory: `examples/history_bench` publishes 100 000 messages
   on one /ws connection, then a second connection recovers them all from
   just before the first: publishes/s, replayed messages/s and MB/s, and
   the hub's RSS growth per kept message (embedded store only: there the
   hub holds the history), beside `ringcast_hub_history_bytes`.

    tools/bench/history.py [--rounds 3] [--seconds 4] [--subscribers 1,10,100,1000] [--rate 100]
    tools/bench/history.py --only publish --baseline OTHER/target/release   # this build vs another, interleaved
"""
import argparse, json, os, shutil, signal, statistics, subprocess, tempfile, time, urllib.request

from broadcast_compare import BIN, ROOT, hub_command, run_one
from procstat import cpu_seconds_fine, rss_kib, wait_port

os.environ.setdefault("RINGCAST_MAX_PUBLISH_RATE", "0")
os.environ.setdefault("RINGCAST_MAX_CONNECTIONS_PER_IP", "0")


def nats_server():
    for path in ("/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"):
        if os.path.exists(path):
            return path
    return None


class Nats:
    """A nats-server node with JetStream, on the server's CPU."""

    def __init__(self, port, cpu):
        self.store = tempfile.mkdtemp(prefix="history-bench-js-")
        self.proc = subprocess.Popen(["taskset", "-c", cpu, nats_server(), "-a", "127.0.0.1", "-p", str(port), "-js",
                                      "-sd", self.store], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, self.proc)
        self.url = f"nats://127.0.0.1:{port}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        shutil.rmtree(self.store, ignore_errors=True)


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(int(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name + " "))


def replay(args, port, extra, nats=None):
    """history_bench against a fresh hub: its JSON, RSS growth, history bytes."""
    command = hub_command(f"{BIN}/ringcast-hub", "16MiB")(port) + ["--history-size", "200000",
                                                                  "--history-memory", "1GiB", *extra]
    if nats:
        # A stream of its own: the publish runs made theirs with 1 000 per topic.
        command += ["--nats", nats.url, "--nats-prefix", "replay.topic"]
    server = subprocess.Popen(["taskset", "-c", args.server_cpu] + command, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_port(port, server)
        if nats:
            for _ in range(200):
                if metric(port, "ringcast_bridge_connected") == 1:
                    break
                time.sleep(0.02)
        rss0 = rss_kib(server.pid)
        out = subprocess.run(["taskset", "-c", args.client_cpu, f"{BIN}/examples/history_bench",
                              f"127.0.0.1:{port}", "bench", str(args.messages), str(args.message_size)],
                             capture_output=True, text=True, check=True, timeout=300).stdout
        result = json.loads(out.strip().splitlines()[-1])
        result["rss_per_message"] = (rss_kib(server.pid) - rss0) * 1024 / args.messages
        result["counted_per_message"] = metric(port, "ringcast_hub_history_bytes") / args.messages if not nats else 0
        return result
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--subscribers", default="1,10,100,1000")
    p.add_argument("--rate", type=int, default=100)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--message-size", type=int, default=100)
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--only", choices=["publish", "replay"])
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--baseline", metavar="DIR",
                   help="also run the ringcast-hub in DIR (another build's target/release) in every publish mode, "
                        "interleaved, and print this build's ratio to it")
    args = p.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ringcast-hub", "-p", "ringcast-bench",
                        "--example", "history_bench"], cwd=ROOT, check=True)
    nats = Nats(4299, args.server_cpu) if nats_server() else None
    if not nats:
        print("nats-server not installed: the cluster modes are skipped")

    def modes_of(hub, suffix=""):
        modes = {"off": hub, "history": lambda port: hub(port) + ["--history-size", "1000"]}
        if nats:
            modes["nats"] = lambda port: hub(port) + ["--nats", nats.url]
            modes["nats+jetstream"] = lambda port: hub(port) + ["--nats", nats.url, "--history-size", "1000"]
        return {mode + suffix: command for mode, command in modes.items()}

    modes = modes_of(hub_command(f"{BIN}/ringcast-hub", "16MiB"))
    if args.baseline:
        modes.update(modes_of(hub_command(os.path.join(args.baseline, "ringcast-hub"), "16MiB"), "@base"))
    counts = [int(n) for n in args.subscribers.split(",")]
    try:
        if args.only != "replay":
            rows, port = [], 9900
            for rnd in range(args.rounds):
                for subs in counts:
                    for mode, command in modes.items():
                        port += 1
                        # With history in JetStream a room joins a trip after its
                        # handshake: the first messages may go before it joined.
                        row = run_one(mode, command, port, subs, args.size, args.rate, args,
                                      ["--text", "--filler", "json"], cpu=cpu_seconds_fine,
                                      tolerate_missing=mode.startswith("nats+jetstream"))
                        if row["errors"] or row["lost"]:
                            raise SystemExit(f"{mode} {subs}: {row['errors']} errors, {row['lost']} lost")
                        rows.append(row)
                        print(f"round {rnd + 1} {subs:>5} subscribers {mode:>14}: {row['us_per_publish']:8.1f} µs "
                              f"CPU/publish  p50 {row['p50_us']:7.0f} µs  p99 {row['p99_us']:7.0f} µs  "
                              f"peak RSS {row['peak_rss_mib']:.1f} MiB  missing {row['missing']}", flush=True)
            print(f"\nmedians of {args.rounds} rounds; {args.size} B JSON-like text at {args.rate}/s into a room")
            base = " vs baseline |" if args.baseline else ""
            print(f"| subscribers | mode | hub CPU per publish | vs its off |{base} p50 | p99 | peak RSS |")
            print("|---|---|---|---|" + ("---|" if args.baseline else "") + "---|---|---|")
            for subs in counts:
                med = {}
                for mode in modes:
                    mine = [r for r in rows if r["server"] == mode and r["subs"] == subs]
                    med[mode] = {k: statistics.median(r[k] for r in mine)
                                 for k in ("us_per_publish", "p50_us", "p99_us", "peak_rss_mib")}
                for mode, m in med.items():
                    suffix = "@base" if mode.endswith("@base") else ""
                    off = med[("nats" if mode.startswith("nats") else "off") + suffix]
                    versus = ""
                    if args.baseline:
                        versus = " |" if suffix else f" {m['us_per_publish'] / med[mode + '@base']['us_per_publish']:.2f}× |"
                    print(f"| {subs} | {mode} | {m['us_per_publish']:.1f} µs "
                          f"| {m['us_per_publish'] / off['us_per_publish']:.2f}× |{versus} {m['p50_us'] / 1000:.2f} ms "
                          f"| {m['p99_us'] / 1000:.2f} ms | {m['peak_rss_mib']:.1f} MiB |")
        if args.only != "publish":
            print(f"\nreplay: {args.messages} messages of {args.message_size} B published on one /ws connection, "
                  "then recovered by another")
            results = {"embedded": [], "jetstream": []}
            port = 9990
            for rnd in range(args.rounds):
                for where in results:
                    if where == "jetstream" and not nats:
                        continue
                    port += 1
                    r = replay(args, port, [], nats if where == "jetstream" else None)
                    results[where].append(r)
                    print(f"round {rnd + 1} {where:>9}: {r['publish_per_sec']:9.0f} publishes/s  "
                          f"{r['replay_per_sec']:9.0f} replayed/s  {r['replay_mb_per_sec']:6.1f} MB/s  "
                          f"RSS +{r['rss_per_message']:.0f} B/message", flush=True)
            print("| history | publishes/s (one connection, pipelined) | replayed messages/s | replayed MB/s "
                  "| hub RSS per kept message | counted per message |")
            print("|---|---|---|---|---|---|")
            for where, rs in results.items():
                if not rs:
                    continue
                med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                counted = f"{med['counted_per_message']:.0f} B" if where == "embedded" else "in NATS"
                rss = f"{med['rss_per_message']:.0f} B" if where == "embedded" else "in NATS"
                print(f"| {where} | {med['publish_per_sec']:.0f} | {med['replay_per_sec']:.0f} "
                      f"| {med['replay_mb_per_sec']:.1f} | {rss} | {counted} |")
    finally:
        if nats:
            nats.stop()


if __name__ == "__main__":
    main()

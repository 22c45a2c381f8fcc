#!/usr/bin/env python3
"""Side-by-side echo benchmark: ringcast, the ringcast TCP echo floor, and
fastwebsockets 0.10 (tokio current_thread), interleaved A B C A B C.

Each server runs pinned to one CPU (taskset -c SERVER_CPU), the load
generator (ringcast-bench, one thread) to another. For every run it reports
echoes/s, server CPU µs per echo (from /proc/PID/stat over the measured
window) and, for ringcast servers, io_uring_enter calls per message (their
own counter, whole run). Prints medians and ratios at the end.

    tools/bench/echo_compare.py [--rounds 3] [--seconds 5] [--case 100x20] [--case 500x16384]

`ringcast-tls` is the same echo over wss:// (TLS 1.3, a certificate made
for the run): the load generator encrypts too, so on one core each side
pays for its own crypto. UWS_ECHO / UWS_ECHO_TLS add uWebSockets over ws://
and over wss:// (its OpenSSL build, given the same certificate in CERT and
KEY).
"""
import argparse, json, os, re, signal, statistics, subprocess, sys, tempfile, time

from procstat import cpu_split, stop_server, tls_certificate, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")
TLS_DIR = os.path.join(ROOT, "target", "bench-tls")

SERVERS = {
    "ringcast": lambda port: [f"{BIN}/examples/echo", "--listen", f"127.0.0.1:{port}", "--shards", "1"],
    "tcp_floor": lambda port: [f"{BIN}/examples/tcp_echo", "--listen", f"127.0.0.1:{port}", "--shards", "1"],
    "fastwebsockets": lambda port: [f"{BIN}/fastwebsockets-peer", f"127.0.0.1:{port}", "echo"],
    "ringcast-tls": lambda port: [f"{BIN}/examples/echo", "--listen", f"127.0.0.1:{port}", "--shards", "1",
                                  "--tls-cert", f"{TLS_DIR}/cert.pem", "--tls-key", f"{TLS_DIR}/key.pem"],
}

# uWebSockets cannot be built on a fresh machine (../shared/bench/uws/README.md
# builds it from fetched sources): its row is there only when UWS_ECHO names
# the binary. It reads its port from the environment.
UWS_ECHO = os.environ.get("UWS_ECHO")
if UWS_ECHO:
    SERVERS["uwebsockets"] = lambda port: [UWS_ECHO]
# The same peer built with uSockets' OpenSSL (SSLApp; certificate and key
# from CERT and KEY): the wss:// row beside ringcast-tls.
UWS_ECHO_TLS = os.environ.get("UWS_ECHO_TLS")
if UWS_ECHO_TLS:
    SERVERS["uwebsockets-tls"] = lambda port: [UWS_ECHO_TLS]

def run_one(name, port, conns, size, args):
    server = subprocess.Popen(["taskset", "-c", args.server_cpu] + SERVERS[name](port),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, PORT=str(port), CERT=f"{TLS_DIR}/cert.pem",
                                       KEY=f"{TLS_DIR}/key.pem"))
    try:
        wait_port(port, server)
        target = ["--tcp", f"127.0.0.1:{port}"] if name == "tcp_floor" else ["--url", f"ws://127.0.0.1:{port}/"]
        if name.endswith("-tls"):
            target = ["--url", f"wss://localhost:{port}/", "--tls-ca", f"{TLS_DIR}/cert.pem"]
        json_path = os.path.join(tempfile.gettempdir(), f"echo_compare-{os.getpid()}-{port}.json")
        client = subprocess.Popen(["taskset", "-c", args.client_cpu, f"{BIN}/ringcast-bench", "echo", *target,
                                   "--connections", str(conns), "--size", str(size),
                                   "--warmup", str(args.warmup), "--duration", str(args.seconds),
                                   "--json", json_path],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The generator's clock starts once every connection is up (5 000
        # take a while); its first progress line comes one second later.
        # The CPU window starts at the end of the warm-up on that clock.
        while True:
            line = client.stderr.readline()
            if not line or " t=1s " in line:
                break
        time.sleep(max(args.warmup - 1, 0) + 0.05)
        user0, sys0 = cpu_split(server.pid)
        window = args.seconds - max(1 - args.warmup, 0) - 0.1
        time.sleep(window)
        user1, sys1 = cpu_split(server.pid)
        out, err = client.communicate(timeout=args.seconds + 120)
        if client.returncode != 0:
            raise SystemExit(f"{name}: load generator failed: {err.strip()}")
        with open(json_path) as f:
            result = json.load(f)
        os.unlink(json_path)
    finally:
        server_out = stop_server(server)
    rate = float(result["msgs_per_sec"])
    echoes_in_window = rate * window
    per_echo = lambda seconds: seconds * 1e6 / echoes_in_window if echoes_in_window else float("nan")
    cpu_us, user_us = per_echo(user1 - user0 + sys1 - sys0), per_echo(user1 - user0)
    enters = None
    m = re.search(r"(?:messages|reads) (\d+) io_uring_enter (\d+)", server_out)
    if m and int(m.group(1)):
        enters = int(m.group(2)) / int(m.group(1))
    return rate, cpu_us, user_us, result["latency_us"]["p50"], result["latency_us"]["p99"], enters

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--case", action="append", help="CONNECTIONSxSIZE, e.g. 100x20 (repeatable)")
    p.add_argument("--servers", default="ringcast,tcp_floor,fastwebsockets")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--json", metavar="FILE", help="write every run (and the medians) to FILE")
    p.add_argument("--baseline", metavar="DIR", action="append",
                   help="also run the echo example of another build (its target/release) as 'baseline' "
                        "(repeatable: baseline2, baseline3, ...)")
    args = p.parse_args()
    for i, base in enumerate(args.baseline or []):
        base = os.path.abspath(base)
        SERVERS["baseline" + (str(i + 1) if i else "")] = \
            lambda port, base=base: [f"{base}/examples/echo", "--listen", f"127.0.0.1:{port}", "--shards", "1"]
    cases = [tuple(int(x) for x in c.split("x")) for c in (args.case or ["100x20", "500x16384"])]
    servers = args.servers.split(",")
    servers += [name for name in SERVERS if name.startswith("baseline") and name not in servers]
    if UWS_ECHO and "uwebsockets" not in servers:
        servers.append("uwebsockets")
    if UWS_ECHO_TLS and "uwebsockets-tls" not in servers:
        servers.append("uwebsockets-tls")
    elif not UWS_ECHO:
        print("uWebSockets: skipped (set UWS_ECHO to a uws_echo built with ../shared/bench/uws/README.md)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ringcast", "--examples",
                        "-p", "ringcast-peers", "-p", "ringcast-bench"], cwd=ROOT, check=True)
    if any(name.endswith("-tls") for name in servers):
        tls_certificate(TLS_DIR)
    port = 9300
    results = {}
    runs = []
    print(f"{'case':>10} {'round':>5} {'server':>15} {'echoes/s':>10} {'cpu us/echo':>11} {'of it user':>10} "
          f"{'p50 us':>8} {'p99 us':>8} {'enter/msg':>9}")
    for conns, size in cases:
        for r in range(args.rounds):
            for name in servers:
                port += 1
                rate, cpu, user, p50, p99, enters = run_one(name, port, conns, size, args)
                results.setdefault((conns, size, name), []).append((rate, cpu, user))
                runs.append({"connections": conns, "size": size, "server": name, "round": r, "rate": rate,
                             "cpu_us": cpu, "user_us": user, "p50_us": p50, "p99_us": p99, "enters_per_msg": enters})
                e = f"{enters:.4f}" if enters is not None else "-"
                print(f"{conns}x{size:<6} {r + 1:>5} {name:>15} {rate:>10.0f} {cpu:>11.2f} {user:>10.2f} "
                      f"{p50:>8.1f} {p99:>8.1f} {e:>9}", flush=True)
    print("\nmedians (ratio to fastwebsockets / to the TCP floor)")
    for conns, size in cases:
        med = {n: statistics.median(x[0] for x in results[(conns, size, n)]) for n in servers}
        cpu = {n: statistics.median(x[1] for x in results[(conns, size, n)]) for n in servers}
        user = {n: statistics.median(x[2] for x in results[(conns, size, n)]) for n in servers}
        for n in servers:
            line = f"{conns}x{size:<6} {n:>15} {med[n]:>10.0f}/s  {cpu[n]:.2f} us cpu/echo ({user[n]:.2f} user)"
            if "fastwebsockets" in med and n != "fastwebsockets":
                line += f"  x{med[n] / med['fastwebsockets']:.2f} vs fastwebsockets"
            if "tcp_floor" in med and n == "ringcast":
                line += f"  x{med[n] / med['tcp_floor']:.2f} of the floor"
            if "uwebsockets" in med and n == "ringcast":
                line += f"  x{med[n] / med['uwebsockets']:.2f} of uWebSockets"
            if "ringcast" in med and n == "ringcast-tls":
                line += f"  x{med[n] / med['ringcast']:.2f} of ws://"
            if "uwebsockets-tls" in med and n == "ringcast-tls":
                line += f"  x{med[n] / med['uwebsockets-tls']:.2f} of uWebSockets over TLS"
            if "uwebsockets" in med and n == "uwebsockets-tls":
                line += f"  x{med[n] / med['uwebsockets']:.2f} of its ws://"
            print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "rounds": args.rounds, "seconds": args.seconds, "warmup": args.warmup,
                       "load_average_end": os.getloadavg()[0]}, f, indent=1)

if __name__ == "__main__":
    main()

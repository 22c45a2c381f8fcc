"""What the benchmark scripts read about the processes they measure, from
/proc, and how they wait for a server to listen. Shared by compare.py,
echo_compare.py, idle_rss.py and pubsub.py."""
import os, resource, signal, socket, subprocess, time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid, gone=None):
    """User + system CPU seconds of `pid`. If the process has exited:
    `gone` when given, else the OSError is raised."""
    try:
        return sum(cpu_split(pid))
    except OSError:
        if gone is None:
            raise
        return gone


def cpu_seconds_fine(pid):
    """On-CPU seconds of `pid`'s live threads, to the nanosecond (the
    scheduler's own account, /proc/PID/task/*/schedstat), where
    `cpu_seconds` moves in 10 ms ticks: for windows in which a server
    works only milliseconds. Threads that have exited are not counted."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def cpu_split(pid):
    """(user, system) CPU seconds of `pid`: what the process did itself and
    what the kernel did for it (on loopback, most of a large echo)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def rss_kib(pid, missing=None):
    """Resident memory of `pid` in KiB. Without a VmRSS line (a zombie):
    `missing` when given, else SystemExit."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    if missing is None:
        raise SystemExit("no VmRSS")
    return missing


def tls_certificate(directory):
    """A certificate for 127.0.0.1 and localhost in DIRECTORY/cert.pem and
    key.pem, made by tools/tls_cert.sh; returns (cert, key)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([os.path.join(root, "tools", "tls_cert.sh"), directory], check=True)
    return os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")


def wait_port(port, proc, tries=200):
    """Waits until something accepts on 127.0.0.1:`port`; exits the script
    if `proc` (the server) dies first or nothing listens after `tries`
    attempts 20 ms apart."""
    for _ in range(tries):
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stdout.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"nothing listens on {port}")


def raise_nofile():
    """Raises this process's open-file limit to the hard limit (children
    inherit it): thousands of connections per run."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def stop_server(proc, sig=signal.SIGINT, timeout=20):
    """Signals a server to stop and waits for it, killing it after `timeout`
    seconds; returns its stdout when that was piped."""
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]

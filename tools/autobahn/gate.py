#!/usr/bin/env python3
"""Gate on an Autobahn|Testsuite report: prints a summary by case group and
exits 1 if any case is FAILED or UNIMPLEMENTED (in `behavior` or
`behaviorClose`), or NON-STRICT without an entry in the allowlist.

    gate.py reports/index.json allowlist.txt
    gate.py --self-test        # checks the gate itself on made-up reports

Allowlist lines: `CASE-ID  reason` (the reason is required); `#` comments.
"""
import collections, json, sys


def load_allowlist(path):
    allowed = {}
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        return allowed
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) < 2:
            sys.exit(f"{path}:{n}: an allowlisted case needs a reason: {line!r}")
        allowed[parts[0]] = parts[1]
    return allowed


def case_key(case_id):
    return tuple(int(p) for p in case_id.split("."))


def self_test():
    """The gate passes a clean report and fails each kind of bad one."""
    import os, subprocess, tempfile

    def verdict(cases, allow=""):
        with tempfile.TemporaryDirectory() as d:
            index = {"agent": {c: {"behavior": b, "behaviorClose": bc} for c, (b, bc) in cases.items()}}
            json.dump(index, open(os.path.join(d, "index.json"), "w"))
            open(os.path.join(d, "allow.txt"), "w").write(allow)
            run = subprocess.run([sys.executable, __file__, os.path.join(d, "index.json"), os.path.join(d, "allow.txt")],
                                 capture_output=True, text=True)
            return run.returncode

    ok = {"1.1.1": ("OK", "OK"), "7.1.6": ("INFORMATIONAL", "INFORMATIONAL")}
    assert verdict(ok) == 0
    assert verdict({**ok, "2.1": ("FAILED", "OK")}) == 1
    assert verdict({**ok, "2.1": ("OK", "FAILED")}) == 1
    assert verdict({**ok, "5.1": ("UNIMPLEMENTED", "OK")}) == 1
    assert verdict({**ok, "6.4.1": ("NON-STRICT", "OK")}) == 1
    assert verdict({**ok, "6.4.1": ("NON-STRICT", "OK")}, "6.4.1  fails on the frame, not the byte\n") == 0
    assert verdict({**ok, "6.4.1": ("FAILED", "OK")}, "6.4.1  reason\n") == 1, "FAILED is never allowed"
    assert verdict(ok, "6.4.1\n") == 1, "an allowlist entry needs a reason"
    assert verdict({}) == 1, "a report without cases (no server listening) fails"
    print("autobahn gate self-test: passed")


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    index_path, allow_path = sys.argv[1], sys.argv[2]
    index = json.load(open(index_path))
    allowed = load_allowlist(allow_path)
    groups = collections.defaultdict(collections.Counter)
    problems = []
    for agent, cases in index.items():
        for case_id in sorted(cases, key=case_key):
            result = cases[case_id]
            group = case_id.split(".")[0]
            verdicts = (result["behavior"], result["behaviorClose"])
            if "FAILED" in verdicts or "UNIMPLEMENTED" in verdicts:
                groups[group]["failed"] += 1
                problems.append(f"{agent} {case_id}: behavior {verdicts[0]}, close {verdicts[1]}")
            elif "NON-STRICT" in verdicts:
                if case_id in allowed:
                    groups[group]["non-strict (allowed)"] += 1
                else:
                    groups[group]["non-strict"] += 1
                    problems.append(f"{agent} {case_id}: NON-STRICT and not in the allowlist")
            elif "INFORMATIONAL" in verdicts:
                groups[group]["informational"] += 1
            else:
                groups[group]["passed"] += 1
    columns = ["passed", "informational", "non-strict (allowed)", "non-strict", "failed"]
    print("group  " + "  ".join(f"{c:>20}" for c in columns) + "  total")
    totals = collections.Counter()
    for group in sorted(groups, key=int):
        counts = groups[group]
        totals.update(counts)
        print(f"{group:>5}  " + "  ".join(f"{counts[c]:>20}" for c in columns) + f"  {sum(counts.values()):>5}")
    print("  all  " + "  ".join(f"{totals[c]:>20}" for c in columns) + f"  {sum(totals.values()):>5}")
    if sum(totals.values()) == 0:
        problems.append("no case ran: is the server listening?")
    if problems:
        print("\nautobahn gate: FAILED")
        for p in problems:
            print("  " + p)
        sys.exit(1)
    print("\nautobahn gate: passed")


if __name__ == "__main__":
    main()

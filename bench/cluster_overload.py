#!/usr/bin/env python3
"""Publishers faster than a cluster takes messages in: a three-node Warren
cluster, one publisher of 1 KiB persistent messages without confirms for
--duration seconds, and each node's resident memory every 2 s.

  classic: the queue's home is n1, the publisher is on n2 (its publishes
           are forwarded to n1);
  quorum:  a quorum queue, the publisher on n1.

Bounded backlogs (broker/src/queue/backlog.rs) make the publisher wait at
the pace the home stores or the group commits; without them the node the
publisher is on holds what waits, without bound.

Usage: python3 bench/cluster_overload.py [--duration 20] [--kind classic|quorum]
Build first: cargo build --release -p warren -p warren-perf
"""
import argparse, os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from run import RELEASE  # noqa: E402


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--kind", choices=["classic", "quorum"], default="classic")
    o = ap.parse_args()
    perf = os.path.join(RELEASE, "warren-perf")
    warren = cluster.WarrenCluster()
    try:
        common = ["-s", "1024", "-x", "1", "-y", "0", "--persistent", "--queue-prefix", "overload"]
        if o.kind == "classic":
            # Declared on n1 (its home), then published to through n2.
            subprocess.run([perf, "--uri", warren.uri(0), "-C", "1"] + common, capture_output=True, check=True)
            uri, extra = warren.uri(1), ["--keep-queues"]
        else:
            uri, extra = warren.uri(0), ["--queue-arg", "x-queue-type=quorum"]
        run = subprocess.Popen([perf, "--uri", uri, "-z", str(o.duration)] + common + extra,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peak = [0, 0, 0]
        while run.poll() is None:
            now = [rss_mib(p.pid) for p in warren.procs]
            peak = [max(a, b) for a, b in zip(peak, now)]
            print("resident MiB n1..n3:", now, flush=True)
            time.sleep(2)
        out = run.stdout.read()
        total = [line for line in out.splitlines() if line.startswith("total:")]
        print(total[-1] if total else out[-400:])
        print("peak resident MiB n1..n3:", peak)
    finally:
        warren.stop()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Stream benchmarks, Warren beside RabbitMQ 3.10 (streams over AMQP 0-9-1)
in one run, interleaved:

  1. publish 1 KiB messages with confirms (1000 outstanding) into a stream;
  2. replay: N retained 1 KiB messages published first, then read by one
     consumer from `first` (prefetch 1000, acks every 100).

Writes bench/out/streams.json and prints a table.

Usage: python3 bench/streams.py [--runs 3] [--duration 5] [--replay 1000000]
                                [--rabbit-uri URI]
Build first: cargo build --release -p warren -p warren-perf
RabbitMQ: see shared/reference.md (listens on 127.0.0.1:5673 there).
"""
import argparse, os, shutil, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, run_perf, start_warren, write_medians  # noqa: E402

STREAM = ["--queue-arg", "x-queue-type=stream", "--persistent"]


def publish(uri, duration):
    s = run_perf(uri, ["-s", "1024", "-c", "1000", "-y", "0", "--queue-prefix", "bench-stream"] + STREAM, duration)
    return s and s["confirm_rate"]


def replay(uri, count, duration):
    # Fill, then read everything back from the start.
    fill = run_perf(uri, ["-s", "1024", "-c", "1000", "-y", "0", "-C", str(count), "--queue-prefix", "bench-replay"] + STREAM,
                    duration * 20)
    if fill is None:
        return None
    s = run_perf(uri, ["-s", "1024", "-x", "0", "-C", str(count), "--keep-queues", "--queue-prefix", "bench-replay",
                       "-q", "1000", "--multiple-ack", "100", "--consumer-arg", "x-stream-offset=first"] + STREAM,
                 duration * 20)
    # The stream is replaced by a one-message one: its segments go, so the
    # next broker's replay does not compete with them for the page cache
    # (10 M KiB messages of each broker do not fit in memory together).
    run_perf(uri, ["-s", "16", "-c", "1", "-y", "0", "-C", "1", "--queue-prefix", "bench-replay"] + STREAM, duration)
    return s and s["consume_rate"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--replay", type=int, default=1_000_000)
    ap.add_argument("--rabbit-uri", default="amqp://guest:guest@127.0.0.1:5673/%2f")
    o = ap.parse_args()
    results = {"publish_confirmed_msg_s": {"warren": [], "rabbitmq": []},
               "replay_msg_s": {"warren": [], "rabbitmq": []}}
    for run in range(o.runs):
        for broker in ("warren", "rabbitmq"):
            data_dir = tempfile.mkdtemp(prefix="bench-streams-")
            proc = None
            if broker == "warren":
                proc, port, _ = start_warren(data_dir)
                uri = f"amqp://guest:guest@127.0.0.1:{port}/%2f"
            else:
                uri = o.rabbit_uri
            try:
                p = publish(uri, o.duration)
                r = replay(uri, o.replay, o.duration)
            finally:
                if proc:
                    proc.terminate()
                    proc.wait()
                shutil.rmtree(data_dir, ignore_errors=True)
            results["publish_confirmed_msg_s"][broker].append(p)
            results["replay_msg_s"][broker].append(r)
            print(f"run {run + 1} {broker}: publish {p} msg/s, replay {r} msg/s", flush=True)
    write_medians(results, "streams.json", {"replay_messages": o.replay})


if __name__ == "__main__":
    main()

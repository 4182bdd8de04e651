#!/usr/bin/env python3
"""Latency of the management API's queue listing and of the Prometheus
scrape with many queues and connections, Warren beside RabbitMQ in one run.

For each broker: declares --queues queues (durable, empty) and opens
--connections idle AMQP connections, then times --runs requests of
GET /api/queues (the whole list, as Flower and dashboards ask for it),
GET /api/queues?page=1&page_size=100, GET /metrics and GET
/metrics/per-object, and prints the median and the worst.

Usage: python3 bench/management.py [--queues 10000] [--connections 1000]
         [--runs 5] [--warren BIN] [--rabbit AMQP_PORT:HTTP_PORT:PROM_PORT]
RabbitMQ: see shared/reference.md (management on 15673, Prometheus on
15693, AMQP on 5673 there). Build Warren first: cargo build --release.
"""
import argparse, base64, json, os, socket, statistics, subprocess, sys, tempfile, time, urllib.request

import pika

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_get(url, auth=True):
    request = urllib.request.Request(url)
    if auth:
        request.add_header("authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as r:
        body = r.read()
    return time.perf_counter() - started, len(body)


def populate(amqp_port, queues, connections, prefix):
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port, heartbeat=0))
    ch = conn.channel()
    for i in range(queues):
        ch.queue_declare(f"{prefix}-{i:05d}", durable=True)
    held = [conn]
    for _ in range(connections):
        held.append(pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port, heartbeat=0)))
    return held


def cleanup(held, queues, prefix):
    ch = held[0].channel()
    for i in range(queues):
        ch.queue_delete(f"{prefix}-{i:05d}")
    for c in held:
        try:
            c.close()
        except Exception:
            pass


def measure(name, amqp, http, prom, args):
    prefix = "mgmt-bench"
    held = populate(amqp, args.queues, args.connections, prefix)
    results = {}
    for label, url, auth in [
        ("GET /api/queues", f"http://127.0.0.1:{http}/api/queues", True),
        ("GET /api/queues?page=1&page_size=100", f"http://127.0.0.1:{http}/api/queues?page=1&page_size=100", True),
        ("GET /metrics", f"http://127.0.0.1:{prom}/metrics", False),
        ("GET /metrics/per-object", f"http://127.0.0.1:{prom}/metrics/per-object", False),
    ]:
        times = []
        size = 0
        for _ in range(args.runs):
            t, size = timed_get(url, auth)
            times.append(t)
        results[label] = (statistics.median(times), max(times), size)
    cleanup(held, args.queues, prefix)
    print(f"\n{name}: {args.queues} queues, {args.connections} idle connections")
    for label, (median, worst, size) in results.items():
        print(f"  {label:40s} median {median * 1000:8.1f} ms  worst {worst * 1000:8.1f} ms  ({size / 1024:.0f} KiB)")
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queues", type=int, default=10000)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warren", default=os.path.join(ROOT, "target", "release", "warren"))
    ap.add_argument("--rabbit", default="5673:15673:15693")
    args = ap.parse_args()
    amqp, http, prom = free_port(), free_port(), free_port()
    data = tempfile.mkdtemp(prefix="warren-mgmt-bench-")
    proc = subprocess.Popen([args.warren, "--listen", f"127.0.0.1:{amqp}", "--management-listen", f"127.0.0.1:{http}",
                             "--prometheus-listen", f"127.0.0.1:{prom}", "--data-dir", data],
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", http), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("Warren did not start")
                time.sleep(0.1)
        warren = measure("Warren", amqp, http, prom, args)
    finally:
        proc.terminate()
        proc.wait()
    rabbit = None
    try:
        r_amqp, r_http, r_prom = (int(p) for p in args.rabbit.split(":"))
        rabbit = measure("RabbitMQ", r_amqp, r_http, r_prom, args)
    except (OSError, pika.exceptions.AMQPError) as e:
        print(f"\nRabbitMQ not measured: {e}")
    with open(os.path.join(ROOT, "bench", "management.json"), "w") as f:
        json.dump({"queues": args.queues, "connections": args.connections, "warren": warren, "rabbitmq": rabbit}, f, indent=2)


if __name__ == "__main__":
    main()

"""Resident memory against queue depth, Warren and RabbitMQ side by side.

Usage:
  python3 bench/depth.py [--count 10000000] [--steps 10] [--watermark 4GiB]
                         [--rabbit-uri amqp://guest:guest@127.0.0.1:5673/%2f
                          --rabbit-pid-file DIR/rabbit.pid --rabbit-env FILE]
                         [--out bench/out/depth.json]

Build first: cargo build --release -p warren -p warren-perf.

For each broker, one durable queue is filled with COUNT persistent 16 B
messages (publisher confirms, nobody consuming) in STEPS equal steps; after
each step the broker's resident memory (VmRSS of the warren process, of
beam.smp for RabbitMQ) is recorded against the depth. Then the broker is
restarted (Warren: kill -9 and start, timed to its first accepted
connection, which comes after recovery; RabbitMQ: `rabbitmqctl stop_app` /
`start_app` under the node's environment, timed the same way) and its
memory read again, and the queue is drained by one auto-ack consumer to
measure the drain rate.

RabbitMQ runs as ../shared/reference.md describes; give it the same
watermark in its rabbitmq.conf (`vm_memory_high_watermark.absolute =
4GiB`) and pass the file of its environment exports with --rabbit-env
(the `export RABBITMQ_...` line of reference.md, saved to a file). Without
--rabbit-uri only Warren is measured.

Draw the chart with:
  target/release/depth-chart bench/out/depth.json bench/depth.png
"""
import argparse, json, os, signal, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = ROOT + "/target/release"
PREFIX = "depth"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def wait_port(port, timeout=3600):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
            return time.monotonic() - started
        except OSError:
            time.sleep(0.005)
    raise SystemExit(f"nothing listens on {port} after {timeout} s")


def perf(uri, *args):
    out = subprocess.run([REL + "/warren-perf", "--uri", uri, "--json", "--queue-prefix", PREFIX, "--keep-queues", *args],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"warren-perf failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fill(uri, pid_of, count, steps):
    """Publishes `count` messages in `steps` steps; returns [(depth, MiB)]."""
    points = [(0, rss_mib(pid_of()))]
    per_step = count // steps
    rates = []
    for step in range(1, steps + 1):
        result = perf(uri, "-x", "1", "-y", "0", "-s", "16", "--persistent", "-c", "5000", "-C", str(per_step))
        rates.append(result.get("confirm_rate") or result.get("publish_rate", 0))
        time.sleep(1)  # let the broker settle before reading its memory
        points.append((step * per_step, rss_mib(pid_of())))
        print(f"  depth {step * per_step:>11,}: {points[-1][1]:8.1f} MiB  ({rates[-1]:,.0f} msg/s)", flush=True)
    return points, sum(rates) / len(rates)


def drain(uri, count):
    started = time.monotonic()
    # --persistent: the queue is declared durable, as it was filled.
    result = perf(uri, "-x", "0", "-y", "1", "-a", "--persistent", "-C", str(count), "-z", "3600")
    consumed = result.get("consumed", count)
    elapsed = time.monotonic() - started
    return result.get("consume_rate") or consumed / elapsed


def warren(args):
    data = os.path.join(ROOT, "bench", "out", "depth-data")
    subprocess.run(["rm", "-rf", data])
    port = free_port()
    uri = f"amqp://guest:guest@127.0.0.1:{port}/%2f"
    command = [REL + "/warren", "--listen", f"127.0.0.1:{port}", "--management-listen", "127.0.0.1:0", "--prometheus-listen", "127.0.0.1:0", "--data-dir", data,
               "--memory-high-watermark", args.watermark]
    log = open(os.path.join(ROOT, "bench", "out", "depth-warren.log"), "w")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    wait_port(port)
    print("Warren", flush=True)
    points, rate = fill(uri, lambda: proc.pid, args.count, args.steps)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    wait_port(port)
    recovery_s = time.monotonic() - started
    recovered_mib = rss_mib(proc.pid)
    print(f"  kill -9 and restart: serving after {recovery_s:.2f} s, {recovered_mib:.1f} MiB", flush=True)
    drain_rate = drain(uri, args.count)
    print(f"  drained at {drain_rate:,.0f} msg/s", flush=True)
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    subprocess.run(["rm", "-rf", data])
    return {"points": points, "publish_rate": rate, "recovery_s": recovery_s,
            "recovered_mib": recovered_mib, "drain_rate": drain_rate}


def rabbitmq(args):
    env = dict(os.environ)
    with open(args.rabbit_env) as exports:
        for word in exports.read().replace("export", " ").split():
            if "=" in word:
                key, value = word.split("=", 1)
                env[key] = value
    ctl = "/usr/lib/rabbitmq/bin/rabbitmqctl"

    def pid():
        with open(args.rabbit_pid_file) as f:
            return int(f.read().strip())

    port = int(args.rabbit_uri.rsplit(":", 1)[1].split("/")[0])
    print("RabbitMQ", flush=True)
    subprocess.run([ctl, "delete_queue", f"{PREFIX}-0"], env=env, capture_output=True)
    points, rate = fill(args.rabbit_uri, pid, args.count, args.steps)
    subprocess.run([ctl, "stop_app"], env=env, capture_output=True, check=True)
    started = time.monotonic()
    subprocess.run([ctl, "start_app"], env=env, capture_output=True, check=True)
    wait_port(port)
    recovery_s = time.monotonic() - started
    recovered_mib = rss_mib(pid())
    print(f"  stop_app and start_app: serving after {recovery_s:.2f} s, {recovered_mib:.1f} MiB", flush=True)
    drain_rate = drain(args.rabbit_uri, args.count)
    print(f"  drained at {drain_rate:,.0f} msg/s", flush=True)
    subprocess.run([ctl, "delete_queue", f"{PREFIX}-0"], env=env, capture_output=True)
    return {"points": points, "publish_rate": rate, "recovery_s": recovery_s,
            "recovered_mib": recovered_mib, "drain_rate": drain_rate}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--watermark", default="4GiB")
    parser.add_argument("--rabbit-uri")
    parser.add_argument("--rabbit-pid-file")
    parser.add_argument("--rabbit-env")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "depth.json"))
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    results = {"count": args.count, "watermark": args.watermark, "message_size": 16,
               "warren": warren(args)}
    # Written after each broker: a RabbitMQ run of 100 M takes hours, and
    # Warren's half should not be lost if it is cut short.
    with open(args.out, "w") as out:
        json.dump(results, out, indent=1)
    if args.rabbit_uri:
        if not (args.rabbit_pid_file and args.rabbit_env):
            sys.exit("--rabbit-uri needs --rabbit-pid-file and --rabbit-env")
        results["rabbitmq"] = rabbitmq(args)
    with open(args.out, "w") as out:
        json.dump(results, out, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

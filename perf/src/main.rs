//! `warren-perf`: a load tool for any AMQP 0-9-1 broker, in the spirit of
//! RabbitMQ's PerfTest and LavinMQ's lavinmqperf.
//!
//! It runs producers and consumers (each on its own connection), prints
//! rates every second, and at the end totals, consumer latency and
//! publish-to-confirm latency percentiles. It checks what it measured:
//! every confirmed message must be consumed (as many times as it was routed
//! to queues), and a run that lost any exits non-zero.

mod client;
mod consumer;
mod delivery_parts;
mod producer;
mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use warren_protocol::*;

use client::{Client, Uri};
use stats::{Counters, Percentiles, Summary};

#[derive(Debug, Parser)]
#[command(version, about = "Load tool for AMQP 0-9-1 brokers (Warren, RabbitMQ, ...)")]
struct Args {
    /// Broker to drive.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    uri: String,
    /// Number of producers (one connection each).
    #[arg(short = 'x', long, default_value_t = 1)]
    producers: u32,
    /// Number of consumers (one connection each), spread over the queues.
    #[arg(short = 'y', long, default_value_t = 1)]
    consumers: u32,
    /// Number of queues (`<prefix>-0`, `<prefix>-1`, ...).
    #[arg(long, default_value_t = 1)]
    queues: u32,
    #[arg(long, default_value = "perf")]
    queue_prefix: String,
    /// Exchange type to publish through: default (the default exchange,
    /// producers spread over the queues), direct, fanout, topic or headers.
    #[arg(long, default_value = "default")]
    exchange_type: String,
    /// Routing key for publishes with a named exchange.
    #[arg(long, default_value = "perf.key")]
    routing_key: String,
    /// Binding key of the queues (default: the routing key).
    #[arg(long)]
    binding_key: Option<String>,
    /// Extra topic bindings with mixed `*`/`#` patterns that do not match.
    #[arg(long, default_value_t = 0)]
    topic_bindings: u32,
    /// Message body size in bytes (at least 20: id, sequence, timestamp).
    #[arg(short = 's', long, default_value_t = 16)]
    size: usize,
    /// Publish with delivery-mode 2, to durable queues.
    #[arg(long)]
    persistent: bool,
    /// Publisher confirms with this many outstanding (0: no confirms).
    #[arg(short = 'c', long, default_value_t = 0)]
    confirm: usize,
    /// Consume with no-ack.
    #[arg(short = 'a', long)]
    auto_ack: bool,
    /// basic.qos prefetch per consumer (manual ack).
    #[arg(short = 'q', long, default_value_t = 1000)]
    prefetch: u16,
    /// Ack with `multiple` every N deliveries.
    #[arg(long, default_value_t = 1)]
    multiple_ack: u64,
    /// Messages per second per producer (0: unlimited).
    #[arg(short = 'r', long, default_value_t = 0)]
    rate: u64,
    /// How long to publish, in seconds.
    #[arg(short = 'z', long, default_value_t = 10.0)]
    duration: f64,
    /// Messages per producer (0: publish for --duration); with no producers,
    /// the messages the consumers drain (within --duration).
    #[arg(short = 'C', long, default_value_t = 0)]
    count: u64,
    /// Queue argument, `key=value` (integers are sent as integers). Repeatable.
    #[arg(long = "queue-arg")]
    queue_args: Vec<String>,
    /// Consumer argument, `key=value`, e.g. `x-stream-offset=first`. Repeatable.
    #[arg(long = "consumer-arg")]
    consumer_args: Vec<String>,
    /// Idle connections to open first, each consuming from its own queue.
    #[arg(long, default_value_t = 0)]
    idle_connections: u32,
    /// Keep what the queues already hold instead of deleting them first
    /// (to consume a backlog left by an earlier run, e.g. with `-x 0`).
    #[arg(long)]
    keep_queues: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `key=value` arguments (of a queue or a consumer) as a field table.
fn queue_arguments(args: &[String]) -> anyhow::Result<FieldTable> {
    let mut table = FieldTable::new();
    for arg in args {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--queue-arg takes key=value, got {arg}"))?;
        let value = match value.parse::<i64>() {
            Ok(n) => FieldValue::I64(n),
            Err(_) => FieldValue::from(value),
        };
        table.insert(key, value);
    }
    Ok(table)
}

fn queue_name(args: &Args, i: u32) -> String {
    format!("{}-{i}", args.queue_prefix)
}

/// Declares queues, the exchange and bindings; purges leftovers.
async fn declare(args: &Args, uri: &Uri) -> anyhow::Result<String> {
    let mut client = Client::connect(uri).await?;
    let arguments = queue_arguments(&args.queue_args)?;
    for i in 0..args.queues {
        let queue = queue_name(args, i);
        if !args.keep_queues {
            client
                .rpc(QueueDelete {
                    queue: queue.as_str().into(),
                    ..Default::default()
                })
                .await?;
        }
        client
            .rpc(QueueDeclare {
                queue: queue.as_str().into(),
                durable: args.persistent,
                arguments: arguments.clone(),
                ..Default::default()
            })
            .await?;
    }
    if args.exchange_type == "default" {
        return Ok(String::new());
    }
    let exchange = format!("{}-{}", args.queue_prefix, args.exchange_type);
    client
        .rpc(ExchangeDelete {
            exchange: exchange.as_str().into(),
            ..Default::default()
        })
        .await?;
    client
        .rpc(ExchangeDeclare {
            exchange: exchange.as_str().into(),
            kind: args.exchange_type.as_str().into(),
            durable: args.persistent,
            ..Default::default()
        })
        .await?;
    for i in 0..args.queues {
        let mut binding_args = FieldTable::new();
        if args.exchange_type == "headers" {
            binding_args.insert("x-match", "all".into());
        }
        client
            .rpc(QueueBind {
                queue: queue_name(args, i).as_str().into(),
                exchange: exchange.as_str().into(),
                routing_key: args.binding_key.as_deref().unwrap_or(&args.routing_key).into(),
                arguments: binding_args,
                ..Default::default()
            })
            .await?;
        for b in 0..args.topic_bindings {
            let pattern = match b % 3 {
                0 => format!("k{b}.*.x"),
                1 => format!("k{b}.#"),
                _ => format!("*.k{b}.#"),
            };
            client
                .rpc(QueueBind {
                    queue: queue_name(args, i).as_str().into(),
                    exchange: exchange.as_str().into(),
                    routing_key: pattern.as_str().into(),
                    ..Default::default()
                })
                .await?;
        }
    }
    Ok(exchange)
}

async fn open_idle_connections(args: &Args, uri: &Uri) -> anyhow::Result<Vec<Client>> {
    let mut idle = Vec::new();
    for i in 0..args.idle_connections {
        let mut client = Client::connect(uri).await?;
        let queue = format!("{}-idle-{i}", args.queue_prefix);
        client
            .rpc(QueueDeclare {
                queue: queue.as_str().into(),
                exclusive: true,
                ..Default::default()
            })
            .await?;
        client
            .rpc(BasicConsume {
                queue: queue.as_str().into(),
                ..Default::default()
            })
            .await?;
        idle.push(client);
    }
    Ok(idle)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let uri = Uri::parse(&args.uri)?;
    let _idle = open_idle_connections(&args, &uri).await?;
    let exchange = declare(&args, &uri).await?;
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let consumers_done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();

    let mut consumer_tasks = Vec::new();
    for i in 0..args.consumers {
        let client = Client::connect(&uri).await?;
        let config = consumer::ConsumerConfig {
            queue: queue_name(&args, i % args.queues.max(1)),
            auto_ack: args.auto_ack,
            prefetch: args.prefetch,
            multiple_ack: args.multiple_ack.max(1),
            arguments: queue_arguments(&args.consumer_args)?,
        };
        consumer_tasks.push(tokio::spawn(consumer::run(
            client,
            config,
            counters.clone(),
            consumers_done.clone(),
            start,
        )));
    }
    let mut producer_tasks = Vec::new();
    for i in 0..args.producers {
        let client = Client::connect(&uri).await?;
        let routing_key = if exchange.is_empty() {
            queue_name(&args, i % args.queues.max(1))
        } else {
            args.routing_key.clone()
        };
        let config = producer::ProducerConfig {
            id: i,
            exchange: exchange.clone(),
            routing_key,
            size: args.size,
            persistent: args.persistent,
            confirm_window: args.confirm,
            rate: args.rate,
            count: args.count,
        };
        producer_tasks.push(tokio::spawn(producer::run(
            client,
            config,
            counters.clone(),
            stop.clone(),
            start,
        )));
    }

    // Per-second report until the producers are done.
    let reporter = {
        let counters = counters.clone();
        let json = args.json;
        tokio::spawn(async move {
            let mut last = counters.snapshot();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = counters.snapshot();
                if !json {
                    println!(
                        "time {:>5.1}s  published {:>8}/s  confirmed {:>8}/s  consumed {:>8}/s",
                        start.elapsed().as_secs_f64(),
                        now[0] - last[0],
                        now[1] - last[1],
                        now[2] - last[2]
                    );
                }
                last = now;
            }
        })
    };
    if args.count == 0 {
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
        stop.store(true, Ordering::Relaxed);
    }
    let mut producers = Vec::new();
    for task in producer_tasks {
        producers.push(task.await??);
    }
    let publish_seconds = start.elapsed().as_secs_f64();
    // Let consumers drain what was published, then stop them.
    let expected_copies = match args.exchange_type.as_str() {
        "fanout" | "topic" | "headers" | "direct" => u64::from(args.queues),
        _ => 1,
    };
    let published: u64 = producers.iter().map(|p| p.published).sum();
    // Without producers, --count is what the consumers drain (a queue
    // filled before), within --duration.
    let drain_only = args.producers == 0 && args.count > 0;
    if args.consumers > 0 {
        let (target, patience) = if drain_only {
            (args.count, Duration::from_secs_f64(args.duration))
        } else {
            (published * expected_copies, Duration::from_secs(60))
        };
        let deadline = Instant::now() + patience;
        while counters.consumed.load(Ordering::Relaxed) < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    consumers_done.store(true, Ordering::Relaxed);
    let mut consumers = Vec::new();
    for task in consumer_tasks {
        consumers.push(task.await??);
    }
    reporter.abort();

    let mut consumer_latency = stats::histogram();
    for c in &consumers {
        consumer_latency.add(&c.latency).ok();
    }
    let mut confirm_latency = stats::histogram();
    for p in &producers {
        confirm_latency.add(&p.confirm_latency).ok();
    }
    let (lost, duplicates) = if args.consumers > 0 {
        check(&producers, &consumers, expected_copies)
    } else {
        (0, 0)
    };
    let counts = counters.snapshot();
    let consume_seconds = if drain_only {
        start.elapsed().as_secs_f64()
    } else {
        publish_seconds
    };
    let summary = Summary {
        seconds: publish_seconds,
        published: counts[0],
        confirmed: counts[1],
        nacked: counters.nacked.load(Ordering::Relaxed),
        consumed: counts[2],
        publish_rate: counts[0] as f64 / publish_seconds,
        confirm_rate: counts[1] as f64 / publish_seconds,
        consume_rate: counts[2] as f64 / consume_seconds,
        consumer_latency: Percentiles::of(&consumer_latency),
        confirm_latency: Percentiles::of(&confirm_latency),
        lost,
        duplicates,
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        summary.print();
    }
    if lost > 0 {
        eprintln!("FAILED: {lost} confirmed messages were never consumed");
        std::process::exit(2);
    }
    Ok(())
}

/// Counts confirmed messages consumed fewer times than they were routed
/// (lost) and consumptions beyond that (duplicates).
fn check(producers: &[producer::ProducerResult], consumers: &[consumer::ConsumerResult], copies: u64) -> (u64, u64) {
    let (mut lost, mut duplicates) = (0, 0);
    for (id, producer) in producers.iter().enumerate() {
        for (seq, &confirmed) in producer.confirmed.iter().enumerate() {
            let seen: u64 = consumers
                .iter()
                .map(|c| c.seen.get(id).and_then(|s| s.get(seq)).copied().unwrap_or(0) as u64)
                .sum();
            if confirmed && seen < copies {
                lost += copies - seen;
            }
            duplicates += seen.saturating_sub(copies);
        }
    }
    (lost, duplicates)
}

//! A producer: publishes numbered, timestamped messages as fast as allowed
//! (by the rate cap and the window of outstanding confirms), and reads
//! confirms on the same connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use hdrhistogram::Histogram;
use tokio::sync::Notify;
use warren_protocol::*;

use crate::client::{Client, FrameReader};
use crate::stats::{histogram, nanos_since, Counters};

pub struct ProducerConfig {
    pub id: u32,
    pub exchange: String,
    pub routing_key: String,
    pub size: usize,
    pub persistent: bool,
    /// Outstanding confirms allowed; 0 publishes without confirms.
    pub confirm_window: usize,
    /// Messages per second; 0 for no cap.
    pub rate: u64,
    /// Stop after this many messages (0: until told to stop).
    pub count: u64,
}

/// What a producer reports when it is done.
pub struct ProducerResult {
    pub published: u64,
    /// Which sequence numbers were confirmed (ack), by index.
    pub confirmed: Vec<bool>,
    pub confirm_latency: Histogram<u64>,
}

/// The body: producer id, sequence number, send time, padding.
pub const HEADER_LEN: usize = 4 + 8 + 8;

fn body(template: &mut BytesMut, id: u32, seq: u64, now: u64, size: usize) -> Bytes {
    template.clear();
    template.put_u32(id);
    template.put_u64(seq);
    template.put_u64(now);
    template.resize(size.max(HEADER_LEN), 0);
    template.split().freeze()
}

struct ConfirmTracker {
    /// Send time of each sequence number (nanos since start).
    sent_at: std::sync::Mutex<Vec<u64>>,
    /// Results, kept here so they survive the reader task being stopped.
    results: std::sync::Mutex<(Vec<bool>, Histogram<u64>)>,
    progress: Notify,
    confirmed_upto: std::sync::atomic::AtomicU64,
    /// Set when the producer is done and the reader should hand back the socket.
    finished: AtomicBool,
}

pub async fn run(
    mut client: Client,
    config: ProducerConfig,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    start: Instant,
) -> anyhow::Result<ProducerResult> {
    let confirms = config.confirm_window > 0;
    if confirms {
        client.rpc(ConfirmSelect { nowait: false }).await?;
    }
    let tracker = Arc::new(ConfirmTracker {
        sent_at: std::sync::Mutex::new(Vec::new()),
        results: std::sync::Mutex::new((Vec::new(), histogram())),
        progress: Notify::new(),
        confirmed_upto: 0.into(),
        finished: AtomicBool::new(false),
    });
    let Client { reader, mut writer } = client;
    let (confirm_task, mut reader) = if confirms {
        let task = tokio::spawn(read_confirms(reader, tracker.clone(), counters.clone(), start));
        (Some(task), None)
    } else {
        (None, Some(reader))
    };

    let mut properties = BasicProperties::default();
    if config.persistent {
        properties.delivery_mode = Some(2);
    }
    let method = Method::BasicPublish(BasicPublish {
        exchange: config.exchange.as_str().into(),
        routing_key: config.routing_key.as_str().into(),
        ..Default::default()
    });
    let size = config.size.max(HEADER_LEN);
    let header = ContentHeader::new(60, size as u64, properties);
    let mut template = BytesMut::with_capacity(size * 64);
    let mut seq = 0u64;
    let batch = 64u64;
    while !stop.load(Ordering::Relaxed) && (config.count == 0 || seq < config.count) {
        let mut allowed = batch;
        if config.count > 0 {
            allowed = allowed.min(config.count - seq);
        }
        if config.rate > 0 {
            let due = (start.elapsed().as_secs_f64() * config.rate as f64) as u64;
            if due <= seq {
                tokio::time::sleep(Duration::from_micros(200)).await;
                continue;
            }
            allowed = allowed.min(due - seq);
        }
        if confirms {
            let outstanding = seq - tracker.confirmed_upto.load(Ordering::Acquire);
            let room = (config.confirm_window as u64).saturating_sub(outstanding);
            if room == 0 {
                let waiting = tracker.progress.notified();
                if seq - tracker.confirmed_upto.load(Ordering::Acquire) >= config.confirm_window as u64 {
                    let _ = tokio::time::timeout(Duration::from_millis(100), waiting).await;
                }
                continue;
            }
            allowed = allowed.min(room);
        }
        let now = nanos_since(start);
        if confirms {
            let mut sent_at = tracker.sent_at.lock().expect("not poisoned");
            sent_at.extend(std::iter::repeat_n(now, allowed as usize));
        }
        for _ in 0..allowed {
            let payload = body(&mut template, config.id, seq, now, size);
            writer.publish(&method, &header, &payload);
            seq += 1;
        }
        writer.flush().await?;
        counters.published.fetch_add(allowed, Ordering::Relaxed);
    }
    // Wait for the last confirms.
    if let Some(task) = confirm_task {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tracker.confirmed_upto.load(Ordering::Acquire) < seq && Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(50), tracker.progress.notified()).await;
        }
        tracker.finished.store(true, Ordering::Release);
        if let Ok(Ok(mut reader)) = task.await {
            let _ = tokio::time::timeout(Duration::from_secs(5), Client::close(&mut writer, &mut reader)).await;
        }
        let (mut confirmed, latency) = std::mem::replace(
            &mut *tracker.results.lock().expect("not poisoned"),
            (Vec::new(), histogram()),
        );
        confirmed.resize(seq as usize, false);
        return Ok(ProducerResult {
            published: seq,
            confirmed,
            confirm_latency: latency,
        });
    }
    if let Some(reader) = reader.as_mut() {
        let _ = tokio::time::timeout(Duration::from_secs(5), Client::close(&mut writer, reader)).await;
    }
    Ok(ProducerResult {
        published: seq,
        confirmed: vec![true; seq as usize],
        confirm_latency: histogram(),
    })
}

/// Reads basic.ack / basic.nack and records which publishes were confirmed.
async fn read_confirms(
    mut reader: FrameReader,
    tracker: Arc<ConfirmTracker>,
    counters: Arc<Counters>,
    start: Instant,
) -> anyhow::Result<FrameReader> {
    let mut settled: Vec<bool> = Vec::new();
    let mut settled_upto = 0u64; // tags 1..=settled_upto are all settled
    loop {
        let next = tokio::time::timeout(Duration::from_millis(50), reader.next_method()).await;
        if tracker.finished.load(Ordering::Acquire) {
            return Ok(reader);
        }
        let Ok(next) = next else {
            continue;
        };
        let (tag, multiple, ack) = match next? {
            Method::BasicAck(a) => (a.delivery_tag, a.multiple, true),
            Method::BasicNack(n) => (n.delivery_tag, n.multiple, false),
            _ => continue,
        };
        let first = if multiple { settled_upto + 1 } else { tag };
        let mut results = tracker.results.lock().expect("not poisoned");
        let (confirmed, latency) = &mut *results;
        if confirmed.len() < tag as usize {
            confirmed.resize(tag as usize, false);
            settled.resize(tag as usize, false);
        }
        let now = nanos_since(start);
        let mut n = 0;
        {
            let sent_at = tracker.sent_at.lock().expect("not poisoned");
            for t in first..=tag {
                let index = (t - 1) as usize;
                if settled[index] {
                    continue;
                }
                settled[index] = true;
                confirmed[index] = ack;
                n += 1;
                if let Some(sent) = sent_at.get(index) {
                    let _ = latency.record((now.saturating_sub(*sent) / 1000).max(1));
                }
            }
        }
        drop(results);
        if ack {
            counters.confirmed.fetch_add(n, Ordering::Relaxed);
        } else {
            counters.nacked.fetch_add(n, Ordering::Relaxed);
        }
        while settled.get(settled_upto as usize).copied().unwrap_or(false) {
            settled_upto += 1;
        }
        tracker.confirmed_upto.store(settled_upto, Ordering::Release);
        tracker.progress.notify_waiters();
    }
}

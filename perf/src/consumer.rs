//! A consumer: receives deliveries, measures latency from the timestamp in
//! each body, counts every (producer, sequence) it sees for the loss and
//! duplicate check, and acks (one by one, or every N with `multiple`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use warren_protocol::*;

use crate::client::Client;
use crate::delivery_parts::Part;
use crate::producer::HEADER_LEN;
use crate::stats::{histogram, nanos_since, Counters};

pub struct ConsumerConfig {
    pub queue: String,
    pub auto_ack: bool,
    pub prefetch: u16,
    /// Ack with `multiple` every this many deliveries (1: ack each).
    pub multiple_ack: u64,
    /// basic.consume's arguments (e.g. a stream's `x-stream-offset`).
    pub arguments: FieldTable,
}

pub struct ConsumerResult {
    pub latency: Histogram<u64>,
    /// Per producer, how often each sequence number was received.
    pub seen: Vec<Vec<u8>>,
}

pub async fn run(
    mut client: Client,
    config: ConsumerConfig,
    counters: Arc<Counters>,
    done: Arc<AtomicBool>,
    start: Instant,
) -> anyhow::Result<ConsumerResult> {
    if !config.auto_ack && config.prefetch > 0 {
        client
            .rpc(BasicQos {
                prefetch_count: config.prefetch,
                ..Default::default()
            })
            .await?;
    }
    client
        .rpc(BasicConsume {
            queue: config.queue.as_str().into(),
            no_ack: config.auto_ack,
            arguments: config.arguments.clone(),
            ..Default::default()
        })
        .await?;
    let Client { mut reader, mut writer } = client;
    let mut result = ConsumerResult {
        latency: histogram(),
        seen: Vec::new(),
    };
    let mut unacked = 0u64;
    let mut last_tag = 0u64;
    let mut body = Vec::new();
    let mut expecting = 0usize;
    let mut in_delivery = false;
    // A delivery has been complete since the last basic.deliver.
    let mut delivered = false;
    // When the frames in hand were read: deliveries read together arrived
    // together, so the clock is read once per socket read, not per
    // delivery (a clock read per delivery was 4% of the consumer's time).
    let mut received = nanos_since(start);
    loop {
        // Frames already read need no timer: one per frame cost as much
        // as a tenth of the consumer's time at a million deliveries a second.
        let waited = match reader.buffered_part()? {
            Some(part) => Ok(Ok(part)),
            None => {
                let next = tokio::time::timeout(Duration::from_millis(20), reader.next_part()).await;
                received = nanos_since(start);
                next
            }
        };
        let part = match waited {
            Ok(part) => part?,
            Err(_) => {
                // Idle: ack what is pending, and stop once told and drained.
                if unacked > 0 {
                    writer.method(BasicAck {
                        delivery_tag: last_tag,
                        multiple: true,
                    });
                    writer.flush().await?;
                    unacked = 0;
                }
                if done.load(Ordering::Relaxed) {
                    let _ = tokio::time::timeout(Duration::from_secs(5), Client::close(&mut writer, &mut reader)).await;
                    return Ok(result);
                }
                continue;
            }
        };
        match part {
            Part::Deliver(delivery_tag) => {
                last_tag = delivery_tag;
                in_delivery = true;
                delivered = false;
                body.clear();
            }
            Part::Other(Frame::Method(_, Method::ChannelClose(c))) => {
                anyhow::bail!("channel closed by broker: {} {}", c.reply_code, c.reply_text)
            }
            Part::Header(body_size) if in_delivery => {
                expecting = body_size as usize;
                if expecting == 0 {
                    in_delivery = false;
                }
            }
            Part::Body(chunk) if in_delivery => {
                // A body in one frame (the common case) is read where it
                // is; only one in several frames is gathered first.
                let whole: Option<&[u8]> = if body.is_empty() && chunk.len() >= expecting {
                    Some(&chunk)
                } else {
                    body.extend_from_slice(&chunk);
                    (body.len() >= expecting).then_some(&body)
                };
                if let Some(whole) = whole {
                    in_delivery = false;
                    delivered = true;
                    record(whole, &mut result, received);
                    counters.consumed.fetch_add(1, Ordering::Relaxed);
                    if !config.auto_ack {
                        unacked += 1;
                        if unacked >= config.multiple_ack {
                            writer.method(BasicAck {
                                delivery_tag: last_tag,
                                multiple: config.multiple_ack > 1,
                            });
                            unacked = 0;
                        }
                    }
                }
            }
            _ => {}
        }
        // Acks go out once a delivery is complete (the same moment the
        // gathered body used to signal).
        if writer.pending() > 16 * 1024 || (writer.pending() > 0 && delivered) {
            writer.flush().await?;
        }
    }
}

fn record(body: &[u8], result: &mut ConsumerResult, received: u64) {
    if body.len() < HEADER_LEN {
        return;
    }
    let producer = u32::from_be_bytes(body[0..4].try_into().unwrap_or_default()) as usize;
    let seq = u64::from_be_bytes(body[4..12].try_into().unwrap_or_default()) as usize;
    let sent = u64::from_be_bytes(body[12..20].try_into().unwrap_or_default());
    let _ = result.latency.record((received.saturating_sub(sent) / 1000).max(1));
    if result.seen.len() <= producer {
        result.seen.resize(producer + 1, Vec::new());
    }
    let seen = &mut result.seen[producer];
    if seen.len() <= seq {
        seen.resize((seq + 1).max(seen.len() * 2), 0);
    }
    seen[seq] = seen[seq].saturating_add(1);
}

//! One client connection: the handshake, then a task that reads frames,
//! runs them through its channels, takes deliveries from queues, and hands
//! encoded output to the writer task.
//!
//! Everything a connection owns (its channels, their consumers and unacked
//! deliveries) is touched only by this task, so none of it needs a lock.
//! Output gathered while handling one batch of input is written in one go.

mod handshake;
mod log;
mod malformed;
mod server_properties;
mod transport;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use foldhash::HashMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use warren_protocol::*;

use crate::alarm::Raised;
use crate::broker::Broker;
use crate::channel::{Channel, ConnCtx, UnfinishedBytes};
use crate::connections::ConnectionInfo;
use crate::durability::Synced;
use crate::error::AmqpError;
use crate::message_stats::ChurnCounters;
use crate::outbound::{ConnectionHandle, Outbound};
use crate::queue::{Deliveries, Delivery};
use handshake::HandshakeError;
use log::{ConnectionName, Opened};
use malformed::Answer;
pub(crate) use transport::Transport;
use writer::WriterHandle;

/// How long to wait for connection.close-ok after sending connection.close
/// (RabbitMQ's `CLOSING_TIMEOUT`; a shorter heartbeat shortens it).
const CLOSE_OK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection whose framing broke keeps its socket after the
/// close, reading nothing (RabbitMQ's `SILENT_CLOSE_DELAY`).
const FRAMING_CLOSE_DELAY: Duration = handshake::SILENT_CLOSE_DELAY;
/// How many inbox items to handle before flushing output and reading again.
const INBOX_BATCH: usize = 512;

/// Serves one accepted socket until it closes.
pub(crate) async fn serve<S: Transport>(broker: Arc<Broker>, mut socket: S, peer: SocketAddr, local: SocketAddr) {
    // On the dual-stack listener, IPv4 peers come as IPv4-mapped IPv6
    // addresses: named (and checked for loopback) as the IPv4 they are.
    let canonical = |addr: SocketAddr| SocketAddr::new(addr.ip().to_canonical(), addr.port());
    let name = ConnectionName {
        peer: canonical(peer),
        local: canonical(local),
    };
    log::accepting(name);
    let timeout = broker.config.handshake_timeout;
    let opened = tokio::time::timeout(timeout, open(&broker, &mut socket, name)).await;
    let session = match opened {
        Err(_) => {
            log::silent_close(name, "handshake timeout");
            return;
        }
        Ok(Err(HandshakeError::Gone)) => return,
        Ok(Err(HandshakeError::Refuse(error))) => {
            refuse(&mut socket, &error).await;
            return;
        }
        Ok(Err(HandshakeError::Silent(why))) => {
            log::silent_close(name, &why);
            tokio::time::sleep(handshake::SILENT_CLOSE_DELAY).await;
            return;
        }
        Ok(Ok(Some(session))) => session,
        Ok(Ok(None)) => return,
    };
    log::granted(&Opened {
        name,
        vhost: &session.vhost.name,
        user: &session.user,
    });
    // Held until the connection has ended: its place under --max-connections.
    let _slot = session.slot;
    let id = broker.next_connection_id();
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    let handle = ConnectionHandle::new(inbox_tx);
    let info = Arc::new(ConnectionInfo {
        id,
        name,
        user: session.user.clone(),
        vhost: session.vhost.name.to_string(),
        auth_mechanism: session.auth_mechanism.clone(),
        tls: session.tls,
        client_properties: session.client_properties,
        connected_at: std::time::SystemTime::now(),
        frame_max: session.frame_max,
        channel_max: session.channel_max,
        heartbeat: session.heartbeat,
        channels: Default::default(),
        handle: handle.clone(),
        counters: Default::default(),
        traffic: Default::default(),
    });
    ChurnCounters::bump(&broker.churn.connections_opened);
    let _registration = broker.connections.register(info.clone());
    let (read_half, write_half) = socket.split();
    let (writer, writer_task) = writer::spawn(write_half, info.traffic.clone());
    let mut connection = Connection {
        ctx: ConnCtx {
            broker: broker.clone(),
            vhost: session.vhost,
            conn_id: id,
            sink: Arc::new(handle.clone()),
            handle,
            out: WriteBuffer::new(),
            frame_max: session.frame_max,
            caps: session.capabilities,
            user: session.user,
            grant: session.grant,
            info,
            route_scratch: Vec::new(),
            confirms_pending: Vec::new(),
            sync_waiting: Vec::new(),
            replicated: Arc::new(tokio::sync::Notify::new()),
            has_published: false,
            now: Instant::now(),
            name,
            unfinished: UnfinishedBytes::default(),
            unfinished_limit: broker.unfinished_limit(),
            leaving: Vec::new(),
        },
        channels: HashMap::default(),
        channel_max: session.channel_max,
        state: State::Open,
        reading: true,
        heartbeat: session.heartbeat,
        writer,
    };
    connection.run(read_half, session.leftover, inbox).await;
    drop(connection);
    ChurnCounters::bump(&broker.churn.connections_closed);
    // Let the writer finish what was queued (a final close-ok, say).
    let _ = tokio::time::timeout(Duration::from_secs(5), writer_task).await;
}

/// Reads the protocol header and runs the handshake. `Ok(None)` when the
/// client spoke another protocol and was answered with our header.
async fn open<S: Transport>(
    broker: &Broker,
    socket: &mut S,
    name: ConnectionName,
) -> Result<Option<handshake::Session>, HandshakeError> {
    let mut buf = BytesMut::with_capacity(4096);
    let header = loop {
        if let Some(header) = decode_protocol_header(&mut buf) {
            break header;
        }
        if socket.read_buf(&mut buf).await? == 0 {
            return Err(HandshakeError::Gone);
        }
    };
    if header == ProtocolHeader::Unsupported {
        socket.write_all(PROTOCOL_HEADER).await?;
        let _ = socket.shutdown().await;
        return Ok(None);
    }
    handshake::run(broker, socket, name, buf).await.map(Some)
}

/// Sends connection.close for a refused handshake and waits briefly for the
/// close-ok so the client reads the reason before the socket goes.
async fn refuse<S: Transport>(socket: &mut S, error: &AmqpError) {
    let mut out = BytesMut::new();
    encode_method(&mut out, 0, &close_method(error));
    if socket.write_all(&out).await.is_err() {
        return;
    }
    let mut buf = BytesMut::new();
    let _ = tokio::time::timeout(handshake::SILENT_CLOSE_DELAY, async {
        loop {
            match decode_frame(&mut buf, 0) {
                Ok(Some(Frame::Method(_, Method::ConnectionCloseOk(_)))) | Err(_) => return,
                Ok(Some(_)) => continue,
                Ok(None) => {}
            }
            match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    let _ = socket.shutdown().await;
}

fn close_method(error: &AmqpError) -> Method {
    Method::ConnectionClose(ConnectionClose {
        reply_code: error.code,
        reply_text: error.reply_text(),
        class_id: error.class_id,
        method_id: error.method_id,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// We sent connection.close and wait for close-ok until the deadline.
    Closing(Instant),
    /// We answered the client's connection.close: what it still sends is
    /// read and dropped until it closes the socket (or the deadline), as
    /// RabbitMQ does. Closing first would reset the connection under
    /// frames the client had already written (amqplib loses its close
    /// callback that way).
    Draining(Instant),
    Closed,
}

struct Connection {
    ctx: ConnCtx,
    /// Looked up for every frame: foldhash, not SipHash, which cost 12% of
    /// a message's instructions here and in the channel's consumer map.
    channels: HashMap<u16, Channel>,
    channel_max: u16,
    state: State,
    /// Cleared once the framing broke: nothing more is read.
    reading: bool,
    /// The negotiated heartbeat interval, in seconds (0: none).
    heartbeat: u16,
    writer: WriterHandle,
}

impl Connection {
    async fn run<R: AsyncRead + Unpin>(
        &mut self,
        mut reader: R,
        mut read_buf: BytesMut,
        mut inbox: mpsc::UnboundedReceiver<Outbound>,
    ) {
        let mut shutdown = self.ctx.broker.shutdown_signal();
        let mut durable = self.ctx.broker.durability().subscribe();
        let replicated = self.ctx.replicated.clone();
        let broker = self.ctx.broker.clone();
        let mut alarms = broker.alarms().subscribe();
        let mut blocked = false;
        let heartbeat = Duration::from_secs(self.heartbeat.into());
        let consumer_timeout = self.ctx.broker.config.consumer_timeout;
        let mut tick = Duration::from_secs(1);
        if !heartbeat.is_zero() {
            tick = tick.min(heartbeat / 2);
        }
        if let Some(timeout) = consumer_timeout {
            tick = tick.min(timeout / 4);
        }
        // Queues may set shorter timeouts (x-consumer-timeout); they are
        // enforced to within this tick.
        tick = tick.min(Duration::from_millis(250));
        let tick = tick.max(Duration::from_millis(50));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_received = Instant::now();
        let mut last_sent = Instant::now();
        // Frames that arrived with the handshake's last read.
        self.handle_input(&mut read_buf);

        while self.state != State::Closed {
            if !self.ctx.leaving.is_empty() {
                // Channels were released: what the inbox holds for their
                // consumers goes back before they are detached.
                while let Ok(work) = inbox.try_recv() {
                    self.handle_outbound(work);
                }
                self.ctx.detach_leaving();
            }
            self.flush(&mut last_sent);
            if self.state == State::Closed {
                break;
            }
            let backlog = self.writer.backlog.clone();
            self.ctx.now = Instant::now();
            // A publishing connection is not read while a resource alarm
            // is raised (RabbitMQ's blocking), so its publishes wait in TCP.
            let raised = *alarms.borrow_and_update();
            if raised.any() != blocked && (self.ctx.has_published || !raised.any()) {
                blocked = raised.any();
                self.notify_blocked(raised);
                self.flush(&mut last_sent);
            }
            let reading = self.reading && backlog.bytes() <= writer::HIGH_WATER_MARK && !blocked;
            tokio::select! {
                read = reader.read_buf(&mut read_buf), if reading => match read {
                    Ok(0) | Err(_) => {
                        if self.state == State::Open {
                            log::dropped_by_client(&self.opened());
                            self.state = State::Closed;
                        }
                        break;
                    }
                    Ok(read) => {
                        last_received = Instant::now();
                        broker.alarms().note_inflow(read);
                        self.ctx.info.traffic.read(read);
                        self.handle_input(&mut read_buf);
                    }
                },
                _ = backlog.wait_below_high_water(), if backlog.bytes() > writer::HIGH_WATER_MARK => {}
                _ = alarms.changed() => {}
                // The inbox is read only while the socket keeps up, so a
                // slow reader's deliveries wait in their queues (bounded
                // by each consumer's transit window), not here.
                work = inbox.recv(), if backlog.bytes() <= writer::HIGH_WATER_MARK => {
                    if let Some(work) = work {
                        self.handle_outbound(work);
                        for _ in 0..INBOX_BATCH {
                            match inbox.try_recv() {
                                Ok(work) => self.handle_outbound(work),
                                Err(_) => break,
                            }
                        }
                    }
                }
                changed = durable.changed(), if !self.ctx.sync_waiting.is_empty() => {
                    if changed.is_ok() {
                        let synced = *durable.borrow_and_update();
                        self.release_durable(synced);
                    }
                }
                _ = replicated.notified(), if !self.ctx.sync_waiting.is_empty() => {
                    let synced = *durable.borrow();
                    self.release_durable(synced);
                }
                _ = ticker.tick() => {
                    let now = Instant::now();
                    self.ctx.now = now;
                    self.enforce_consumer_timeout(now, consumer_timeout);
                    if let State::Closing(deadline) | State::Draining(deadline) = self.state {
                        if now >= deadline {
                            break;
                        }
                    }
                    if !heartbeat.is_zero() {
                        // While the connection is blocked its socket is not
                        // read, so heartbeats cannot be seen: the clock
                        // stops, as RabbitMQ pauses its heartbeat monitor.
                        if blocked {
                            last_received = now;
                        }
                        if now.duration_since(last_received) > heartbeat * 2 {
                            tracing::error!(
                                "closing AMQP connection ({}): missed heartbeats from client, timeout: {}s",
                                self.opened(),
                                heartbeat.as_secs()
                            );
                            break;
                        }
                        if now.duration_since(last_sent) >= heartbeat / 2 {
                            encode_heartbeat(self.ctx.out.buf());
                        }
                    }
                }
                _ = Broker::stopping(&mut shutdown), if self.state == State::Open => {
                    tracing::info!("closing AMQP connection ({}): the broker is shutting down", self.opened());
                    self.close_connection(AmqpError::new(
                        reply_code::CONNECTION_FORCED,
                        "broker forced connection closure with reason 'shutdown'",
                    ));
                }
            }
        }
        self.flush(&mut last_sent);
        self.release_everything(&mut inbox);
    }

    /// Who is on this connection, for its log lines.
    fn opened(&self) -> Opened<'_> {
        Opened {
            name: self.ctx.name,
            vhost: &self.ctx.vhost.name,
            user: &self.ctx.user,
        }
    }

    /// How long to wait for close-ok: RabbitMQ's 30 s, or the heartbeat
    /// interval when that is shorter.
    fn close_ok_timeout(&self) -> Duration {
        let heartbeat = Duration::from_secs(self.heartbeat.into());
        if !heartbeat.is_zero() && heartbeat < CLOSE_OK_TIMEOUT {
            heartbeat
        } else {
            CLOSE_OK_TIMEOUT
        }
    }

    /// Sends what the last batch of work produced to the writer.
    fn flush(&mut self, last_sent: &mut Instant) {
        for id in std::mem::take(&mut self.ctx.confirms_pending) {
            if let Some(channel) = self.channels.get_mut(&id) {
                channel.flush_confirms(&mut self.ctx);
            }
        }
        if !self.ctx.out.is_empty() {
            if !self.writer.send(self.ctx.out.take_chunks()) {
                self.state = State::Closed;
            }
            *last_sent = Instant::now();
        }
    }

    /// connection.blocked / unblocked, for clients that asked for them.
    fn notify_blocked(&mut self, raised: Raised) {
        if !self.ctx.caps.connection_blocked {
            return;
        }
        if raised.any() {
            self.ctx.send(
                0,
                ConnectionBlocked {
                    reason: ShortStr::from_static(raised.reason()),
                },
            );
        } else {
            self.ctx.send(0, ConnectionUnblocked {});
        }
    }

    /// Sends the confirms that waited for the store to sync up to `epoch`.
    fn release_durable(&mut self, synced: Synced) {
        let waiting = std::mem::take(&mut self.ctx.sync_waiting);
        for id in waiting {
            if let Some(channel) = self.channels.get_mut(&id) {
                if channel.release_durable(&mut self.ctx, synced) {
                    self.ctx.sync_waiting.push(id);
                }
            }
        }
    }

    /// Decodes and handles every complete frame in the read buffer.
    fn handle_input(&mut self, read_buf: &mut BytesMut) {
        while matches!(self.state, State::Open | State::Closing(_)) {
            match decode_frame(read_buf, self.ctx.frame_max) {
                Ok(Some(frame)) => self.handle_frame(frame),
                Ok(None) => break,
                Err(e) => {
                    // Nothing after a frame that did not decode is read.
                    read_buf.clear();
                    if self.state != State::Open {
                        self.state = State::Closed;
                        break;
                    }
                    let channel = e.channel;
                    let why = e.text.clone();
                    match malformed::answer(e) {
                        Answer::Close(error) => self.fail_connection(channel, error),
                        Answer::CloseAndStop(error) => {
                            self.fail_connection(channel, error);
                            self.reading = false;
                            self.state = State::Closing(Instant::now() + FRAMING_CLOSE_DELAY);
                        }
                        Answer::Drop => {
                            tracing::error!(
                                "closing AMQP connection ({}): a frame on channel {channel} could not be parsed: {why}",
                                self.opened()
                            );
                            self.state = State::Closed;
                        }
                    }
                    break;
                }
            }
        }
        if let State::Draining(_) = self.state {
            // What the client sent after its connection.close is dropped.
            read_buf.clear();
        }
    }

    fn handle_frame(&mut self, frame: Frame) {
        let channel_id = frame.channel();
        if let State::Closing(_) = self.state {
            // Only the close handshake matters now.
            match frame {
                Frame::Method(0, Method::ConnectionCloseOk(_)) => self.state = State::Closed,
                Frame::Method(0, Method::ConnectionClose(_)) => {
                    self.ctx.send(0, ConnectionCloseOk {});
                    self.state = State::Closed;
                }
                _ => {}
            }
            return;
        }
        if channel_id == 0 {
            self.handle_connection_frame(frame);
            return;
        }
        if let Err(error) = self.handle_channel_frame(channel_id, frame) {
            if error.is_connection_error() {
                self.fail_connection(channel_id, error);
            } else {
                self.close_channel(channel_id, error);
            }
        }
    }

    fn handle_connection_frame(&mut self, frame: Frame) {
        match frame {
            Frame::Heartbeat(_) => {}
            Frame::Method(_, Method::ConnectionClose(_)) => {
                self.release_channels();
                self.ctx.send(0, ConnectionCloseOk {});
                self.state = State::Draining(Instant::now() + self.close_ok_timeout());
                log::closed(&self.opened());
            }
            Frame::Method(_, Method::ConnectionCloseOk(_)) => self.state = State::Closed,
            Frame::Method(_, Method::ConnectionUpdateSecret(_)) => {
                self.ctx.send(0, ConnectionUpdateSecretOk {});
            }
            Frame::Method(_, Method::ConnectionBlocked(_) | Method::ConnectionUnblocked(_)) => {}
            Frame::Method(_, method) => {
                let error =
                    AmqpError::channel_error("unexpected method in connection state running").on_method(method.ids());
                self.fail_connection(0, error);
            }
            Frame::Header(_, header) => {
                let mut payload = BytesMut::new();
                header.encode(&mut payload);
                self.fail_connection(0, unexpected_content(frame_type::HEADER, &payload));
            }
            Frame::Body(_, body) => self.fail_connection(0, unexpected_content(frame_type::BODY, &body)),
        }
    }

    fn handle_channel_frame(&mut self, id: u16, frame: Frame) -> Result<(), AmqpError> {
        if let Frame::Heartbeat(_) = frame {
            return Err(AmqpError::unexpected_frame("type 8, all octets = <<>>"));
        }
        let Some(channel) = self.channels.get_mut(&id) else {
            return match frame {
                Frame::Method(_, Method::ChannelOpen(_)) => {
                    if self.channels.len() >= usize::from(self.channel_max) {
                        return Err(AmqpError::not_allowed(format!(
                            "number of channels opened ({}) has reached the negotiated channel_max ({})",
                            self.channels.len(),
                            self.channel_max
                        ))
                        .on_method((20, 10)));
                    }
                    self.ctx
                        .broker
                        .check_channel_limit(&self.ctx.user)
                        .map_err(|e| e.on_method((20, 10)))?;
                    let channel = Channel::new(id);
                    self.ctx.info.channel_opened(channel.info.clone());
                    ChurnCounters::bump(&self.ctx.broker.churn.channels_opened);
                    self.channels.insert(id, channel);
                    self.ctx.send(id, ChannelOpenOk::default());
                    Ok(())
                }
                Frame::Method(_, m) => Err(AmqpError::channel_error("expected 'channel.open'").on_method(m.ids())),
                _ => Err(AmqpError::unexpected_frame(
                    "expected method frame, got non method frame instead",
                )),
            };
        };
        if channel.closing {
            match frame {
                Frame::Method(_, Method::ChannelCloseOk(_)) => {
                    self.channels.remove(&id);
                    self.ctx.info.channel_closed(id);
                    ChurnCounters::bump(&self.ctx.broker.churn.channels_closed);
                }
                Frame::Method(_, Method::ChannelClose(_)) => self.ctx.send(id, ChannelCloseOk {}),
                _ => {}
            }
            return Ok(());
        }
        match frame {
            Frame::Method(_, Method::ChannelClose(_)) => {
                let mut channel = self.channels.remove(&id).expect("channel looked up above");
                self.ctx.info.channel_closed(id);
                ChurnCounters::bump(&self.ctx.broker.churn.channels_closed);
                channel.release(&mut self.ctx);
                self.ctx.send(id, ChannelCloseOk {});
                Ok(())
            }
            Frame::Method(_, Method::ChannelCloseOk(_)) => Ok(()),
            frame => channel.handle_frame(&mut self.ctx, frame),
        }
    }

    /// Closes channels whose oldest delivery has waited too long for its ack;
    /// their unacknowledged messages return to the queues. Every channel
    /// reports its oldest deliveries to the queues, for consumer lag.
    fn enforce_consumer_timeout(&mut self, now: Instant, timeout: Option<Duration>) {
        if self.state != State::Open {
            return;
        }
        let expired: Vec<(u16, AmqpError)> = self
            .channels
            .values_mut()
            .filter_map(|c| c.tick_unacked(now, timeout).map(|e| (c.id, e)))
            .collect();
        for (id, error) in expired {
            self.close_channel(id, error);
        }
    }

    /// A channel exception: release the channel and send channel.close.
    fn close_channel(&mut self, id: u16, error: AmqpError) {
        log::channel_error(&self.opened(), id, &error);
        if let Some(channel) = self.channels.get_mut(&id) {
            // Confirms already earned go out before the close, as RabbitMQ
            // sends them: nothing may follow channel.close on the channel.
            channel.flush_confirms(&mut self.ctx);
            channel.release(&mut self.ctx);
            channel.closing = true;
        }
        self.ctx.send(
            id,
            ChannelClose {
                reply_code: error.code,
                reply_text: error.reply_text(),
                class_id: error.class_id,
                method_id: error.method_id,
            },
        );
    }

    /// A connection exception found on `channel`: logged, then the
    /// connection is closed with it.
    fn fail_connection(&mut self, channel: u16, error: AmqpError) {
        log::connection_error(&self.opened(), channel, &error);
        self.close_connection(error);
    }

    /// Releases everything and sends connection.close.
    fn close_connection(&mut self, error: AmqpError) {
        self.release_channels();
        self.ctx.send(0, close_method(&error));
        self.state = State::Closing(Instant::now() + self.close_ok_timeout());
    }

    fn handle_outbound(&mut self, work: Outbound) {
        match work {
            Outbound::Deliver(delivery) => {
                // Off the inbox: room in the consumer's transit window, and
                // the queue woken if it had stopped for want of it.
                let stalled = delivery
                    .consumer
                    .transit
                    .arrived(delivery.entry.message.body.len())
                    .then(|| delivery.queue.clone());
                match self.channels.get_mut(&delivery.consumer.channel) {
                    Some(channel) if channel.accepts_delivery(&delivery.consumer) => {
                        channel.deliver(&mut self.ctx, delivery);
                    }
                    _ => return_undelivered(delivery),
                }
                if let Some(queue) = stalled {
                    queue.kick();
                }
            }
            Outbound::DeliverMany(deliveries) => {
                let bytes = deliveries.entries.iter().map(|e| e.message.body.len()).sum();
                let stalled = deliveries
                    .consumer
                    .transit
                    .arrived_many(deliveries.entries.len() as u32, bytes)
                    .then(|| deliveries.queue.clone());
                match self.channels.get_mut(&deliveries.consumer.channel) {
                    Some(channel) if channel.accepts_delivery(&deliveries.consumer) => {
                        channel.deliver_many(&mut self.ctx, deliveries);
                    }
                    _ => return_all_undelivered(deliveries),
                }
                if let Some(queue) = stalled {
                    queue.kick();
                }
            }
            Outbound::ConsumerCancelled { channel, consumer_tag } => {
                if let Some(channel) = self.channels.get_mut(&channel) {
                    channel.consumer_cancelled_by_queue(&mut self.ctx, consumer_tag);
                }
            }
            Outbound::DirectReply {
                channel,
                consumer_tag,
                message,
            } => {
                if let Some(channel) = self.channels.get_mut(&channel) {
                    channel.deliver_reply(&mut self.ctx, &consumer_tag, &message);
                }
            }
            Outbound::ForceClose { reason } => {
                if self.state == State::Open {
                    tracing::info!("closing AMQP connection ({}): {reason}", self.opened());
                    self.close_connection(AmqpError::new(reply_code::CONNECTION_FORCED, reason));
                }
            }
        }
    }

    fn release_channels(&mut self) {
        let ids: Vec<u16> = self.channels.keys().copied().collect();
        for id in ids {
            if let Some(mut channel) = self.channels.remove(&id) {
                ChurnCounters::bump(&self.ctx.broker.churn.channels_closed);
                channel.release(&mut self.ctx);
            }
        }
    }

    /// Final clean-up: channels released, exclusive queues deleted, and
    /// deliveries still in the inbox handed back to their queues.
    fn release_everything(&mut self, inbox: &mut mpsc::UnboundedReceiver<Outbound>) {
        self.release_channels();
        inbox.close();
        while let Ok(work) = inbox.try_recv() {
            match work {
                Outbound::Deliver(delivery) => return_undelivered(delivery),
                Outbound::DeliverMany(deliveries) => return_all_undelivered(deliveries),
                _ => {}
            }
        }
        self.ctx.detach_leaving();
        for queue in self.ctx.vhost.exclusive_queues_of(self.ctx.conn_id) {
            self.ctx.vhost.delete_queue(&queue);
        }
    }
}

/// Hands a delivery that will not be written back to its queue. (Its
/// transit window is left as it is: the consumer is cancelled or its
/// connection is going, or the caller counted it off already.)
fn return_undelivered(delivery: Delivery) {
    delivery.consumer.release_credit(1);
    delivery
        .queue
        .return_undelivered(delivery.entry, !delivery.consumer.no_ack);
}

/// [`return_undelivered`] for a batch.
fn return_all_undelivered(deliveries: Deliveries) {
    let Deliveries {
        consumer,
        queue,
        entries,
    } = deliveries;
    consumer.release_credit(entries.len() as u32);
    for entry in entries {
        queue.return_undelivered(entry, !consumer.no_ack);
    }
}

/// RabbitMQ's 505 for a content frame on channel 0: its type and payload
/// as Erlang prints them, the first 16 octets of a longer one.
fn unexpected_content(kind: u8, payload: &[u8]) -> AmqpError {
    let detail = if payload.len() <= 16 {
        format!("type {kind}, all octets = {}", erlang_binary_text(payload))
    } else {
        format!("type {kind}, first 16 octets = {}", erlang_binary_text(&payload[..16]))
    };
    AmqpError::unexpected_frame(detail)
}

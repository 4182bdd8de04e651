//! A minimal AMQP 0-9-1 client on warren-protocol, built for load: one
//! channel per connection, publishes encoded straight into a write buffer
//! and sent in batches, no per-message future or allocation.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use warren_protocol::*;

/// The parts of an `amqp://user:pass@host:port/vhost` URI.
#[derive(Debug, Clone)]
pub struct Uri {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub vhost: String,
}

impl Uri {
    pub fn parse(uri: &str) -> anyhow::Result<Uri> {
        let rest = uri
            .strip_prefix("amqp://")
            .ok_or_else(|| anyhow::anyhow!("URI must start with amqp://"))?;
        let (auth, rest) = rest.rsplit_once('@').unwrap_or(("guest:guest", rest));
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let (host_port, vhost) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5672"));
        let vhost = match vhost {
            "" => "/".to_string(),
            v => v.replace("%2f", "/").replace("%2F", "/"),
        };
        Ok(Uri {
            user: user.to_string(),
            password: password.to_string(),
            host: host.to_string(),
            port: port.parse()?,
            vhost,
        })
    }
}

fn protocol_error(e: ProtocolError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Reads frames from a connection.
pub struct FrameReader {
    socket: OwnedReadHalf,
    buf: BytesMut,
}

impl FrameReader {
    /// A frame already read from the socket, without waiting for more.
    pub fn buffered(&mut self) -> io::Result<Option<Frame>> {
        decode_frame(&mut self.buf, 0).map_err(protocol_error)
    }

    pub async fn next(&mut self) -> io::Result<Frame> {
        loop {
            if let Some(frame) = self.buffered()? {
                return Ok(frame);
            }
            self.read_more().await?;
        }
    }

    /// Reads what the socket has into the buffer (failing at its end).
    pub(crate) async fn read_more(&mut self) -> io::Result<()> {
        if self.socket.read_buf(&mut self.buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    pub(crate) fn buffer(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The next method on channel 1, failing on a close from the server.
    pub async fn next_method(&mut self) -> io::Result<Method> {
        loop {
            match self.next().await? {
                Frame::Method(_, Method::ChannelClose(c)) => {
                    return Err(io::Error::other(format!(
                        "channel closed: {} {}",
                        c.reply_code, c.reply_text
                    )))
                }
                Frame::Method(_, Method::ConnectionClose(c)) => {
                    return Err(io::Error::other(format!(
                        "connection closed: {} {}",
                        c.reply_code, c.reply_text
                    )))
                }
                Frame::Method(_, m) => return Ok(m),
                _ => continue,
            }
        }
    }
}

/// Writes frames to a connection.
pub struct FrameWriter {
    socket: OwnedWriteHalf,
    pub buf: WriteBuffer,
    pub frame_max: u32,
}

impl FrameWriter {
    pub fn method(&mut self, method: impl Into<Method>) {
        encode_method(self.buf.buf(), 1, &method.into());
    }

    pub fn publish(&mut self, publish: &Method, header: &ContentHeader, body: &Bytes) {
        encode_content(&mut self.buf, 1, publish, header, body, self.frame_max);
    }

    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        for chunk in self.buf.take_chunks() {
            self.socket.write_all(&chunk).await?;
        }
        Ok(())
    }
}

/// An open connection with channel 1 open.
pub struct Client {
    pub reader: FrameReader,
    pub writer: FrameWriter,
}

impl Client {
    pub async fn connect(uri: &Uri) -> io::Result<Client> {
        let socket = TcpStream::connect((uri.host.as_str(), uri.port)).await?;
        socket.set_nodelay(true)?;
        let (read, mut write) = socket.into_split();
        write.write_all(PROTOCOL_HEADER).await?;
        let mut client = Client {
            reader: FrameReader {
                socket: read,
                buf: BytesMut::with_capacity(256 * 1024),
            },
            writer: FrameWriter {
                socket: write,
                buf: WriteBuffer::new(),
                frame_max: 131_072,
            },
        };
        client.handshake(uri).await?;
        Ok(client)
    }

    async fn send0(&mut self, method: impl Into<Method>) -> io::Result<()> {
        encode_method(self.writer.buf.buf(), 0, &method.into());
        self.writer.flush().await
    }

    async fn handshake(&mut self, uri: &Uri) -> io::Result<()> {
        let Method::ConnectionStart(_) = self.reader.next_method().await? else {
            return Err(io::Error::other("expected connection.start"));
        };
        let response = format!("\0{}\0{}", uri.user, uri.password);
        self.send0(ConnectionStartOk {
            client_properties: FieldTable::new(),
            mechanism: ShortStr::from_static("PLAIN"),
            response: Bytes::from(response),
            locale: ShortStr::from_static("en_US"),
        })
        .await?;
        let Method::ConnectionTune(tune) = self.reader.next_method().await? else {
            return Err(io::Error::other("login refused"));
        };
        let frame_max = if tune.frame_max == 0 { 131_072 } else { tune.frame_max };
        self.writer.frame_max = frame_max;
        self.send0(ConnectionTuneOk {
            channel_max: tune.channel_max,
            frame_max,
            heartbeat: 0,
        })
        .await?;
        self.send0(ConnectionOpen {
            virtual_host: uri.vhost.as_str().into(),
            ..Default::default()
        })
        .await?;
        let Method::ConnectionOpenOk(_) = self.reader.next_method().await? else {
            return Err(io::Error::other("expected connection.open-ok"));
        };
        self.rpc(ChannelOpen::default()).await?;
        Ok(())
    }

    /// Closes the connection politely and waits for close-ok, so the broker
    /// reads everything sent before it (dropping the socket instead can
    /// reset it and lose unread publishes).
    pub async fn close(writer: &mut FrameWriter, reader: &mut FrameReader) -> io::Result<()> {
        encode_method(
            writer.buf.buf(),
            0,
            &Method::ConnectionClose(ConnectionClose {
                reply_code: 200,
                reply_text: ShortStr::from_static("bye"),
                ..Default::default()
            }),
        );
        writer.flush().await?;
        loop {
            if let Frame::Method(0, Method::ConnectionCloseOk(_)) = reader.next().await? {
                return Ok(());
            }
        }
    }

    /// Sends a method on channel 1 and waits for the reply.
    pub async fn rpc(&mut self, method: impl Into<Method>) -> io::Result<Method> {
        self.writer.method(method);
        self.writer.flush().await?;
        self.reader.next_method().await
    }
}

//! Broker settings, with RabbitMQ's defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a broker needs to know to start.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where to accept AMQP connections (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Where durable state is kept.
    pub data_dir: PathBuf,
    /// How long a delivery may stay unacknowledged before its channel is
    /// closed (RabbitMQ's `consumer_timeout`); `None` disables the check.
    pub consumer_timeout: Option<Duration>,
    /// Heartbeat interval the server proposes, in seconds (0 disables).
    pub heartbeat: u16,
    /// Largest frame the server accepts, overhead included.
    pub frame_max: u32,
    /// Highest channel number a client may open.
    pub channel_max: u16,
    /// Largest message body accepted, in bytes.
    pub max_message_size: usize,
    /// Users as (name, password); each may use every vhost.
    pub users: Vec<(String, String)>,
    /// Virtual hosts created at start.
    pub vhosts: Vec<String>,
    /// Whether `guest` may log in from addresses other than loopback.
    pub guest_remote_access: bool,
    /// How long a client has to finish the connection handshake.
    pub handshake_timeout: Duration,
    /// Below this many free bytes on the data directory's disk, publishing
    /// connections are blocked (RabbitMQ's disk alarm; its default 50 MB).
    pub disk_free_limit: u64,
    /// Delete `data_dir` when the broker shuts down (for tests).
    pub remove_data_dir_on_shutdown: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listen: "0.0.0.0:5672".parse().expect("valid literal address"),
            data_dir: PathBuf::from("./warren-data"),
            consumer_timeout: Some(Duration::from_millis(1_800_000)),
            heartbeat: 60,
            frame_max: 131_072,
            channel_max: 2047,
            max_message_size: 16 * 1024 * 1024,
            users: vec![("guest".into(), "guest".into())],
            vhosts: vec!["/".into()],
            guest_remote_access: false,
            handshake_timeout: Duration::from_secs(10),
            disk_free_limit: 50_000_000,
            remove_data_dir_on_shutdown: false,
        }
    }
}

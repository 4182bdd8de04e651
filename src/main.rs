//! The `warren` binary: parses flags, a config file and `WARREN_*`
//! environment variables, starts the broker, and shuts it down gracefully on
//! SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;
use warren::BrokerConfig;

/// mimalloc instead of the system allocator: the broker allocates and frees
/// many small buffers across threads, where glibc's malloc showed up as
/// 10-15% of CPU time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Warren: an AMQP 0-9-1 message broker, a drop-in replacement for RabbitMQ.
///
/// Every option can also be set in a TOML file given with --config (same
/// names with underscores, e.g. `consumer_timeout_ms = 60000`) or with a
/// WARREN_* environment variable. Flags win over the environment, which wins
/// over the file. Log verbosity comes from RUST_LOG (default: info).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// TOML file with settings.
    #[arg(long, env = "WARREN_CONFIG")]
    config: Option<PathBuf>,
    /// Address to accept AMQP connections on [default: 0.0.0.0:5672].
    #[arg(long, env = "WARREN_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory for durable state [default: ./warren-data].
    #[arg(long, env = "WARREN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Close a channel whose delivery stays unacknowledged this long, in ms;
    /// 0 disables [default: 1800000, as RabbitMQ].
    #[arg(long, env = "WARREN_CONSUMER_TIMEOUT_MS")]
    consumer_timeout_ms: Option<u64>,
    /// Heartbeat interval proposed to clients, in seconds; 0 disables [default: 60].
    #[arg(long, env = "WARREN_HEARTBEAT")]
    heartbeat: Option<u16>,
    /// Largest frame accepted, in bytes [default: 131072].
    #[arg(long, env = "WARREN_FRAME_MAX")]
    frame_max: Option<u32>,
    /// Highest channel number a client may open [default: 2047].
    #[arg(long, env = "WARREN_CHANNEL_MAX")]
    channel_max: Option<u16>,
    /// Largest message body accepted, in bytes [default: 16777216].
    #[arg(long, env = "WARREN_MAX_MESSAGE_SIZE")]
    max_message_size: Option<usize>,
    /// Block publishers while the data directory's disk has less free space
    /// than this, in bytes [default: 50000000, as RabbitMQ].
    #[arg(long, env = "WARREN_DISK_FREE_LIMIT")]
    disk_free_limit: Option<u64>,
}

/// The same settings as read from the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    consumer_timeout_ms: Option<u64>,
    heartbeat: Option<u16>,
    frame_max: Option<u32>,
    channel_max: Option<u16>,
    max_message_size: Option<usize>,
    disk_free_limit: Option<u64>,
}

impl Cli {
    fn into_config(self) -> anyhow::Result<BrokerConfig> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let mut config = BrokerConfig::default();
        if let Some(v) = self.listen.or(file.listen) {
            config.listen = v;
        }
        if let Some(v) = self.data_dir.or(file.data_dir) {
            config.data_dir = v;
        }
        if let Some(ms) = self.consumer_timeout_ms.or(file.consumer_timeout_ms) {
            config.consumer_timeout = (ms > 0).then(|| Duration::from_millis(ms));
        }
        if let Some(v) = self.heartbeat.or(file.heartbeat) {
            config.heartbeat = v;
        }
        if let Some(v) = self.frame_max.or(file.frame_max) {
            config.frame_max = v;
        }
        if let Some(v) = self.channel_max.or(file.channel_max) {
            config.channel_max = v;
        }
        if let Some(v) = self.max_message_size.or(file.max_message_size) {
            config.max_message_size = v;
        }
        if let Some(v) = self.disk_free_limit.or(file.disk_free_limit) {
            config.disk_free_limit = v;
        }
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Logs go to stderr, as README.md says; stdout stays free.
        .with_writer(std::io::stderr)
        .init();
    let config = Cli::parse().into_config()?;
    let broker = warren::start(config.clone())
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    broker.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

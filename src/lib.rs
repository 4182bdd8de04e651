//! Warren as a library: start an AMQP 0-9-1 broker inside your own program
//! or test suite.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let broker = warren::start_ephemeral().await?;
//! let url = broker.amqp_url(); // amqp://guest:guest@127.0.0.1:<port>/%2f
//! // ... connect with lapin, pika, amqplib ...
//! broker.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub use warren_broker::{start, BrokerConfig, RunningBroker, ServerIdentity, Settings};

/// A configuration for tests: listen on a free loopback port, keep data in a
/// fresh directory under the system's temp dir.
pub fn ephemeral_config() -> BrokerConfig {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = format!(
        "warren-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    BrokerConfig {
        listen: "127.0.0.1:0".parse().expect("valid literal address"),
        data_dir: std::env::temp_dir().join(unique),
        remove_data_dir_on_shutdown: true,
        ..BrokerConfig::default()
    }
}

/// Starts a broker on an ephemeral loopback port with a temporary data dir.
pub async fn start_ephemeral() -> std::io::Result<RunningBroker> {
    start(ephemeral_config()).await
}

/// The default data directory, relative to the working directory.
pub fn default_data_dir() -> PathBuf {
    BrokerConfig::default().data_dir
}

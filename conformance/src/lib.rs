//! Test harness for the conformance suite.
//!
//! `broker_url()` returns the AMQP URL to test against. Without
//! configuration it starts one Warren broker in-process (on a free loopback
//! port, in a runtime of its own that outlives each test's runtime) and every
//! test in the binary shares it; tests use unique names so they can run in
//! parallel. With `WARREN_TEST_URL` set (for example to a RabbitMQ at
//! `amqp://guest:guest@127.0.0.1:5673/%2f`) the suite runs against that
//! broker instead, which is how its expectations are checked against
//! RabbitMQ itself.

use std::sync::OnceLock;

pub fn broker_url() -> String {
    if let Ok(url) = std::env::var("WARREN_TEST_URL") {
        return url;
    }
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| start_background_broker(warren::ephemeral_config()))
        .clone()
}

/// Starts a Warren broker with `config` on a thread of its own and returns
/// its URL. The broker lives until the test process exits.
pub fn start_background_broker(config: warren::BrokerConfig) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("warren-test-broker".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test broker runtime");
            runtime.block_on(async move {
                let broker = warren::start(config).await.expect("start test broker");
                let _ = tx.send(broker.amqp_url());
                std::future::pending::<()>().await;
            });
        })
        .expect("spawn test broker thread");
    rx.recv().expect("test broker did not start")
}

/// Whether the suite runs against an external broker (RabbitMQ) rather
/// than an in-process Warren.
pub fn external_broker() -> bool {
    std::env::var("WARREN_TEST_URL").is_ok()
}

//! Test harness for the conformance suite.
//!
//! `broker_url()` returns the AMQP URL to test against. With `WARREN_TEST_URL`
//! set (for example to a RabbitMQ at `amqp://guest:guest@127.0.0.1:5673/%2f`)
//! the suite runs against that broker, which is how the expected behaviour is
//! checked against RabbitMQ itself.
// TODO(broker): without the variable, start Warren in-process.

pub fn broker_url() -> String {
    std::env::var("WARREN_TEST_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

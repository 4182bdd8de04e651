//! Server-generated names, in RabbitMQ's format: a prefix, a dash and 16
//! random bytes in unpadded URL-safe base64 (`amq.gen-…`, `amq.ctag-…`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use warren_protocol::ShortStr;

pub(crate) fn generate(prefix: &str) -> ShortStr {
    let bytes: [u8; 16] = rand::random();
    ShortStr::from(format!("{prefix}-{}", URL_SAFE_NO_PAD.encode(bytes)))
}

pub(crate) fn queue_name() -> ShortStr {
    generate("amq.gen")
}

pub(crate) fn consumer_tag() -> ShortStr {
    generate("amq.ctag")
}

//! `hash_password`: RabbitMQ's salted SHA-256 password hash, computed
//! locally (for definitions files and `password_hash`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

pub(crate) fn hash(password: &str) -> String {
    let salt: [u8; 4] = rand::random();
    with_salt(salt, password)
}

fn with_salt(salt: [u8; 4], password: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt)
        .chain_update(password.as_bytes())
        .finalize();
    let mut bytes = salt.to_vec();
    bytes.extend_from_slice(&digest);
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    /// RabbitMQ's documented example (salt 908D C60A, "test12").
    #[test]
    fn the_documented_example() {
        assert_eq!(
            super::with_salt([0x90, 0x8D, 0xC6, 0x0A], "test12"),
            "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
        );
    }
}

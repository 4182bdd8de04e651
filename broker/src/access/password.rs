//! Password hashes as RabbitMQ stores them: base64 of a 4-byte salt
//! followed by the digest of salt + password
//! (`rabbit_password_hashing_sha256`, the default, and the `sha512` and
//! `md5` variants that older definitions files carry).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

/// The hashing scheme of a stored password, named as RabbitMQ names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) enum HashingAlgorithm {
    #[default]
    #[serde(rename = "rabbit_password_hashing_sha256")]
    Sha256,
    #[serde(rename = "rabbit_password_hashing_sha512")]
    Sha512,
    #[serde(rename = "rabbit_password_hashing_md5")]
    Md5,
}

impl HashingAlgorithm {
    /// Parses RabbitMQ's name for it.
    pub(crate) fn parse(name: &str) -> Option<HashingAlgorithm> {
        match name {
            "rabbit_password_hashing_sha256" => Some(HashingAlgorithm::Sha256),
            "rabbit_password_hashing_sha512" => Some(HashingAlgorithm::Sha512),
            "rabbit_password_hashing_md5" => Some(HashingAlgorithm::Md5),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HashingAlgorithm::Sha256 => "rabbit_password_hashing_sha256",
            HashingAlgorithm::Sha512 => "rabbit_password_hashing_sha512",
            HashingAlgorithm::Md5 => "rabbit_password_hashing_md5",
        }
    }

    fn digest(self, salt: &[u8], password: &[u8]) -> Vec<u8> {
        match self {
            HashingAlgorithm::Sha256 => Sha256::new()
                .chain_update(salt)
                .chain_update(password)
                .finalize()
                .to_vec(),
            HashingAlgorithm::Sha512 => Sha512::new()
                .chain_update(salt)
                .chain_update(password)
                .finalize()
                .to_vec(),
            HashingAlgorithm::Md5 => md5::Md5::new()
                .chain_update(salt)
                .chain_update(password)
                .finalize()
                .to_vec(),
        }
    }
}

/// A stored password: the base64 text RabbitMQ exports as `password_hash`.
/// Empty means the user has no password (it can only log in by other
/// means, such as a client certificate).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct PasswordHash(pub String);

impl PasswordHash {
    /// Hashes a password with a fresh random salt.
    pub(crate) fn new(algorithm: HashingAlgorithm, password: &str) -> PasswordHash {
        let salt: [u8; 4] = rand::random();
        PasswordHash::with_salt(algorithm, salt, password)
    }

    pub(crate) fn with_salt(algorithm: HashingAlgorithm, salt: [u8; 4], password: &str) -> PasswordHash {
        let mut bytes = salt.to_vec();
        bytes.extend(algorithm.digest(&salt, password.as_bytes()));
        PasswordHash(BASE64.encode(bytes))
    }

    /// Whether `password` is the one this hash was made from. A hash that
    /// does not decode matches nothing.
    pub(crate) fn matches(&self, algorithm: HashingAlgorithm, password: &str) -> bool {
        let Ok(bytes) = BASE64.decode(self.0.as_bytes()) else {
            return false;
        };
        if bytes.len() <= 4 {
            return false;
        }
        let (salt, digest) = bytes.split_at(4);
        let expected = algorithm.digest(salt, password.as_bytes());
        // Constant-time enough for equal-length digests: compare all bytes.
        expected.len() == digest.len() && expected.iter().zip(digest).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// Whether the hash decodes as base64 of a salt and a digest (import
    /// checks it, as RabbitMQ refuses a hash it cannot read).
    pub(crate) fn is_well_formed(&self) -> bool {
        self.0.is_empty() || BASE64.decode(self.0.as_bytes()).is_ok_and(|b| b.len() > 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from RabbitMQ's "Credentials and Passwords" guide: the
    /// salt 908D C60A and the password "test12".
    #[test]
    fn rabbitmq_documented_sha256_example() {
        let hash = PasswordHash::with_salt(HashingAlgorithm::Sha256, [0x90, 0x8D, 0xC6, 0x0A], "test12");
        assert_eq!(hash.0, "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR");
        assert!(hash.matches(HashingAlgorithm::Sha256, "test12"));
        assert!(!hash.matches(HashingAlgorithm::Sha256, "test13"));
    }

    /// The MD5 example from RabbitMQ's mailing list (salt CAD5089B, "simon").
    #[test]
    fn rabbitmq_md5_example() {
        let hash = PasswordHash::with_salt(HashingAlgorithm::Md5, [0xCA, 0xD5, 0x08, 0x9B], "simon");
        assert_eq!(hash.0, "ytUIm8s3AnKsXQjptplKFytfVxI=");
    }

    #[test]
    fn every_algorithm_round_trips_and_bad_hashes_match_nothing() {
        for algorithm in [
            HashingAlgorithm::Sha256,
            HashingAlgorithm::Sha512,
            HashingAlgorithm::Md5,
        ] {
            let hash = PasswordHash::new(algorithm, "s3cret");
            assert!(hash.matches(algorithm, "s3cret"));
            assert!(!hash.matches(algorithm, "S3cret"));
            assert_eq!(HashingAlgorithm::parse(algorithm.as_str()), Some(algorithm));
        }
        assert!(!PasswordHash("not base64!".into()).matches(HashingAlgorithm::Sha256, ""));
        assert!(!PasswordHash(String::new()).matches(HashingAlgorithm::Sha256, ""));
        assert!(!PasswordHash("AAAA".into()).is_well_formed());
    }
}

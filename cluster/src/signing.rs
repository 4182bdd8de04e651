//! Who may speak on the cluster port. With a shared secret
//! (`--cluster-secret`, as RabbitMQ's Erlang cookie), every request a
//! member sends carries the time it was sent and an HMAC-SHA256, keyed by
//! the secret, over that time, the path and the body; the port answers 401
//! to a request without a valid one, or sent more than `SKEW` away from its
//! own clock. The secret itself never crosses the wire. Without a secret
//! every caller that reaches the port is believed (logged at start).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header with the send time (ms since the Unix epoch).
pub(crate) const TIME_HEADER: &str = "x-warren-time";
/// The header with the signature (base64).
pub(crate) const SIGNATURE_HEADER: &str = "x-warren-signature";

/// How far a request's time may be from this member's clock.
const SKEW: Duration = Duration::from_secs(30);

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("it is not signed (is --cluster-secret set on the caller?)")]
    Unsigned,
    #[error("its time is more than 30 s from this node's clock")]
    Stale,
    #[error("its signature does not match (is --cluster-secret the same on both nodes?)")]
    Forged,
}

/// Signs and checks requests; does nothing without a secret.
#[derive(Clone)]
pub(crate) struct Signer {
    secret: Option<Vec<u8>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Signer {
    pub(crate) fn new(secret: Option<&str>) -> Signer {
        Signer {
            secret: secret.map(|s| s.as_bytes().to_vec()),
        }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.secret.is_some()
    }

    fn mac(&self, secret: &[u8], time: &str, path: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
        for part in [time.as_bytes(), b"\n", path.as_bytes(), b"\n", body] {
            mac.update(part);
        }
        Some(mac)
    }

    /// The headers to send with a request to `path` carrying `body`.
    pub(crate) fn sign(&self, path: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        let Some(secret) = &self.secret else { return Vec::new() };
        let time = now_ms().to_string();
        let Some(mac) = self.mac(secret, &time, path, body) else {
            return Vec::new();
        };
        let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        vec![(TIME_HEADER, time), (SIGNATURE_HEADER, signature)]
    }

    /// The checks that need no body: both headers there, the time near.
    pub(crate) fn verify_time(&self, time: Option<&str>, signature: Option<&str>) -> Result<(), Refusal> {
        if self.secret.is_none() {
            return Ok(());
        }
        let (Some(time), Some(_)) = (time, signature) else {
            return Err(Refusal::Unsigned);
        };
        let sent: u64 = time.parse().map_err(|_| Refusal::Forged)?;
        if now_ms().abs_diff(sent) > SKEW.as_millis() as u64 {
            return Err(Refusal::Stale);
        }
        Ok(())
    }

    /// Checks a request's `time` and `signature` headers.
    pub(crate) fn verify(
        &self,
        time: Option<&str>,
        signature: Option<&str>,
        path: &str,
        body: &[u8],
    ) -> Result<(), Refusal> {
        let Some(secret) = &self.secret else { return Ok(()) };
        self.verify_time(time, signature)?;
        let (Some(time), Some(signature)) = (time, signature) else {
            return Err(Refusal::Unsigned);
        };
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .map_err(|_| Refusal::Forged)?;
        let mac = self.mac(secret, time, path, body).ok_or(Refusal::Forged)?;
        // Compared in constant time.
        mac.verify_slice(&signature).map_err(|_| Refusal::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(headers: &'a [(&str, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn only_the_same_secret_over_the_same_request_passes() {
        let signer = Signer::new(Some("cookie"));
        let headers = signer.sign("/raft/metadata/vote", b"body");
        let (time, signature) = (header(&headers, TIME_HEADER), header(&headers, SIGNATURE_HEADER));
        assert_eq!(signer.verify(time, signature, "/raft/metadata/vote", b"body"), Ok(()));
        assert_eq!(
            signer.verify(time, signature, "/raft/metadata/vote", b"other"),
            Err(Refusal::Forged)
        );
        assert_eq!(
            signer.verify(time, signature, "/metadata/propose", b"body"),
            Err(Refusal::Forged)
        );
        let other = Signer::new(Some("another"));
        assert_eq!(
            other.verify(time, signature, "/raft/metadata/vote", b"body"),
            Err(Refusal::Forged)
        );
        assert_eq!(
            signer.verify(None, None, "/raft/metadata/vote", b"body"),
            Err(Refusal::Unsigned)
        );
        assert_eq!(
            signer.verify(Some("1000"), signature, "/raft/metadata/vote", b"body"),
            Err(Refusal::Stale)
        );
        // Without a secret nothing is signed and everything passes.
        let open = Signer::new(None);
        assert!(open.sign("/status", b"").is_empty());
        assert_eq!(open.verify(None, None, "/status", b""), Ok(()));
    }
}

//! Who may speak on the cluster port. Every request names the roster its
//! sender was given (a digest of `--cluster-peers`): members given
//! different lists could start groups with different memberships, so the
//! port answers 409 to a caller whose list differs. With a shared secret
//! (`--cluster-secret`, as RabbitMQ's Erlang cookie), every request also
//! carries the time it was sent and an HMAC-SHA256, keyed by the secret,
//! over that time, the member it is meant for, the path and the body; the
//! port answers 401 to a request without a valid one, or sent more than
//! `SKEW` away from its own clock. The secret itself never crosses the
//! wire. Without a secret every caller that reaches the port is believed
//! (logged at start).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header with the send time (ms since the Unix epoch).
pub(crate) const TIME_HEADER: &str = "x-warren-time";
/// The header with the signature (base64).
pub(crate) const SIGNATURE_HEADER: &str = "x-warren-signature";
/// The header with the digest of the sender's roster.
pub(crate) const ROSTER_HEADER: &str = "x-warren-roster";

/// How far a request's time may be from this member's clock.
const SKEW: Duration = Duration::from_secs(30);

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("the caller was given other --cluster-peers than this node")]
    OtherRoster,
    #[error("it is not signed (is --cluster-secret set on the caller?)")]
    Unsigned,
    #[error("its time is more than 30 s from this node's clock")]
    Stale,
    #[error("its signature does not match (is --cluster-secret the same on both nodes?)")]
    Forged,
}

/// What a request carries to be believed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Credentials<'a> {
    pub roster: Option<&'a str>,
    pub time: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Signs and checks requests; without a secret, checks the roster only.
#[derive(Clone)]
pub(crate) struct Signer {
    secret: Option<Vec<u8>>,
    /// This member's name (what requests to it are signed for).
    node: String,
    /// The digest of the roster this member was given.
    roster: String,
}

/// This node's clock, ms since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Signer {
    pub(crate) fn new(secret: Option<&str>, node: &str, roster: String) -> Signer {
        Signer {
            secret: secret.map(|s| s.as_bytes().to_vec()),
            node: node.to_string(),
            roster,
        }
    }

    /// The digest of this member's roster (logged at start, so that two
    /// members' lists can be compared).
    pub(crate) fn roster(&self) -> &str {
        &self.roster
    }

    pub(crate) fn is_on(&self) -> bool {
        self.secret.is_some()
    }

    fn mac(&self, secret: &[u8], time: &str, to: &str, path: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
        for part in [
            time.as_bytes(),
            b"\n",
            to.as_bytes(),
            b"\n",
            path.as_bytes(),
            b"\n",
            body,
        ] {
            mac.update(part);
        }
        Some(mac)
    }

    /// The headers to send with a request to member `to`'s `path`
    /// carrying `body`.
    pub(crate) fn sign(&self, to: &str, path: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        let mut headers = vec![(ROSTER_HEADER, self.roster.clone())];
        let Some(secret) = &self.secret else { return headers };
        let time = now_ms().to_string();
        if let Some(mac) = self.mac(secret, &time, to, path, body) {
            let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            headers.push((TIME_HEADER, time));
            headers.push((SIGNATURE_HEADER, signature));
        }
        headers
    }

    /// The checks that need no body: the same roster, both headers there,
    /// the time near.
    pub(crate) fn verify_early(&self, given: Credentials<'_>) -> Result<(), Refusal> {
        if given.roster != Some(self.roster.as_str()) {
            return Err(Refusal::OtherRoster);
        }
        if self.secret.is_none() {
            return Ok(());
        }
        let (Some(time), Some(_)) = (given.time, given.signature) else {
            return Err(Refusal::Unsigned);
        };
        let sent: u64 = time.parse().map_err(|_| Refusal::Forged)?;
        if now_ms().abs_diff(sent) > SKEW.as_millis() as u64 {
            return Err(Refusal::Stale);
        }
        Ok(())
    }

    /// Checks a request to this member.
    pub(crate) fn verify(&self, given: Credentials<'_>, path: &str, body: &[u8]) -> Result<(), Refusal> {
        self.verify_early(given)?;
        let Some(secret) = &self.secret else { return Ok(()) };
        let (Some(time), Some(signature)) = (given.time, given.signature) else {
            return Err(Refusal::Unsigned);
        };
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .map_err(|_| Refusal::Forged)?;
        let mac = self.mac(secret, time, &self.node, path, body).ok_or(Refusal::Forged)?;
        // Compared in constant time.
        mac.verify_slice(&signature).map_err(|_| Refusal::Forged)
    }
}

/// A digest of the roster: every member's name and address, in order.
pub(crate) fn roster_digest(members: impl Iterator<Item = (String, String)>) -> String {
    let mut hash = <Sha256 as sha2::Digest>::new();
    for (name, address) in members {
        sha2::Digest::update(&mut hash, format!("{name}={address}\n").as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(sha2::Digest::finalize(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials<'a>(headers: &'a [(&str, String)]) -> Credentials<'a> {
        let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        Credentials {
            roster: header(ROSTER_HEADER),
            time: header(TIME_HEADER),
            signature: header(SIGNATURE_HEADER),
        }
    }

    #[test]
    fn only_the_same_secret_over_the_same_request_to_the_same_member_passes() {
        let n1 = Signer::new(Some("cookie"), "n1", "r".into());
        let n2 = Signer::new(Some("cookie"), "n2", "r".into());
        let headers = n1.sign("n2", "/raft/metadata/vote", b"body");
        let given = credentials(&headers);
        assert_eq!(n2.verify(given, "/raft/metadata/vote", b"body"), Ok(()));
        assert_eq!(n2.verify(given, "/raft/metadata/vote", b"other"), Err(Refusal::Forged));
        assert_eq!(n2.verify(given, "/metadata/propose", b"body"), Err(Refusal::Forged));
        // Meant for n2: replayed to n3, refused.
        let n3 = Signer::new(Some("cookie"), "n3", "r".into());
        assert_eq!(n3.verify(given, "/raft/metadata/vote", b"body"), Err(Refusal::Forged));
        let other = Signer::new(Some("another"), "n2", "r".into());
        assert_eq!(
            other.verify(given, "/raft/metadata/vote", b"body"),
            Err(Refusal::Forged)
        );
        let bare = Credentials {
            roster: Some("r"),
            ..Credentials::default()
        };
        assert_eq!(n2.verify(bare, "/raft/metadata/vote", b"body"), Err(Refusal::Unsigned));
        let stale = Credentials {
            time: Some("1000"),
            ..given
        };
        assert_eq!(n2.verify(stale, "/raft/metadata/vote", b"body"), Err(Refusal::Stale));
        let elsewhere = Signer::new(Some("cookie"), "n2", "another roster".into());
        assert_eq!(
            elsewhere.verify(given, "/raft/metadata/vote", b"body"),
            Err(Refusal::OtherRoster)
        );
        // Without a secret only the roster is checked.
        let open = Signer::new(None, "n2", "r".into());
        let headers = open.sign("n2", "/status", b"");
        assert_eq!(headers.len(), 1);
        assert_eq!(open.verify(credentials(&headers), "/status", b""), Ok(()));
        assert_eq!(
            open.verify(Credentials::default(), "/status", b""),
            Err(Refusal::OtherRoster)
        );
    }
}

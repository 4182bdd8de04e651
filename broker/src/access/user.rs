//! A user: name, password hash and tags, as RabbitMQ's internal
//! database keeps them.

use serde::{Deserialize, Serialize};

use super::password::{HashingAlgorithm, PasswordHash};

/// A user tag. The five RabbitMQ gives meaning to, and any other word,
/// which is kept and shown but grants nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum UserTag {
    Administrator,
    Monitoring,
    Policymaker,
    Management,
    Impersonator,
    Other(String),
}

impl UserTag {
    pub(crate) fn parse(word: &str) -> UserTag {
        match word {
            "administrator" => UserTag::Administrator,
            "monitoring" => UserTag::Monitoring,
            "policymaker" => UserTag::Policymaker,
            "management" => UserTag::Management,
            "impersonator" => UserTag::Impersonator,
            other => UserTag::Other(other.to_string()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            UserTag::Administrator => "administrator",
            UserTag::Monitoring => "monitoring",
            UserTag::Policymaker => "policymaker",
            UserTag::Management => "management",
            UserTag::Impersonator => "impersonator",
            UserTag::Other(word) => word,
        }
    }

    /// Tags as the HTTP API and definitions files write them: a list, or
    /// (older files, `rabbitmqctl`) one comma-separated string.
    pub(crate) fn parse_list(text: &str) -> Vec<UserTag> {
        let mut tags: Vec<UserTag> = text
            .split([',', ' '])
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(UserTag::parse)
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }
}

impl Serialize for UserTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for UserTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(UserTag::parse(&String::deserialize(d)?))
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct User {
    pub name: String,
    pub password_hash: PasswordHash,
    pub hashing_algorithm: HashingAlgorithm,
    pub tags: Vec<UserTag>,
}

impl User {
    /// A user with a freshly hashed password.
    pub(crate) fn with_password(name: &str, password: &str, tags: Vec<UserTag>) -> User {
        User {
            name: name.to_string(),
            password_hash: PasswordHash::new(HashingAlgorithm::Sha256, password),
            hashing_algorithm: HashingAlgorithm::Sha256,
            tags,
        }
    }

    pub(crate) fn has_tag(&self, tag: &UserTag) -> bool {
        self.tags.contains(tag)
    }

    pub(crate) fn password_matches(&self, password: &str) -> bool {
        self.password_hash.matches(self.hashing_algorithm, password)
    }
}

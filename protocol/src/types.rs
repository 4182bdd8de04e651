//! The string types of the wire: `shortstr` and `longstr`.

use bytes::Bytes;
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// An AMQP `shortstr`: at most 255 bytes of UTF-8.
///
/// It shares the buffer it was decoded from (a routing key in a publish is a
/// slice of the frame, not a copy). Decoding checks UTF-8 once, so `as_str`
/// is free afterwards.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ShortStr(Bytes);

/// Hashes as the `str` it holds, so maps keyed by `ShortStr` can be looked
/// up with a plain `&str` (required by the `Borrow<str>` impl).
impl std::hash::Hash for ShortStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl ShortStr {
    pub const MAX_LEN: usize = 255;

    /// A string known at compile time.
    pub const fn from_static(s: &'static str) -> Self {
        ShortStr(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes already known to be UTF-8 of at most 255 bytes.
    ///
    /// Returns `None` if they are not.
    pub fn from_bytes(bytes: Bytes) -> Option<Self> {
        if bytes.len() <= Self::MAX_LEN && std::str::from_utf8(&bytes).is_ok() {
            Some(ShortStr(bytes))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        // SAFETY-free: every constructor checks UTF-8, so this cannot fail;
        // fall back to "" rather than panic if that invariant were ever broken.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for ShortStr {
    /// Copies the string; strings longer than 255 bytes are cut at a char
    /// boundary so the result always encodes.
    fn from(s: &str) -> Self {
        ShortStr(Bytes::copy_from_slice(truncate(s).as_bytes()))
    }
}

impl From<String> for ShortStr {
    fn from(mut s: String) -> Self {
        let keep = truncate(&s).len();
        s.truncate(keep);
        ShortStr(Bytes::from(s))
    }
}

fn truncate(s: &str) -> &str {
    if s.len() <= ShortStr::MAX_LEN {
        return s;
    }
    let mut end = ShortStr::MAX_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Deref for ShortStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for ShortStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ShortStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for ShortStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ShortStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An AMQP `longstr`: up to 4 GiB of arbitrary bytes.
pub type LongStr = Bytes;

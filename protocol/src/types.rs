//! The string types of the wire: `shortstr` and `longstr`.

use bytes::Bytes;
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// An AMQP `shortstr`: at most 255 bytes of UTF-8.
///
/// Short strings are kept in place: a routing key, exchange name or
/// content type of up to [`ShortStr::INLINE_CAP`] bytes is copied into the
/// value itself rather than held as a shared slice of the read buffer.
/// Copying 30 bytes costs less than the atomic increment (and later
/// decrement) a shared slice costs, and those atomics were about a third of
/// the time spent decoding a small publish. Longer strings are copied once
/// into an `Arc<str>`, so a clone stays cheap. The value is 32 bytes, as
/// large as the `Bytes` it replaced, so frames did not grow.
///
/// Every constructor checks UTF-8 (decoding does it once, with an ASCII fast
/// path); `as_str` re-checks inline strings rather than use `unsafe`.
#[derive(Clone)]
pub struct ShortStr(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; ShortStr::INLINE_CAP] },
    Static(&'static str),
    Heap(Arc<str>),
}

impl Default for ShortStr {
    fn default() -> Self {
        ShortStr::from_static("")
    }
}

/// Hashes as the `str` it holds, so maps keyed by `ShortStr` can be looked
/// up with a plain `&str` (required by the `Borrow<str>` impl).
impl std::hash::Hash for ShortStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq for ShortStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ShortStr {}

impl PartialOrd for ShortStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders by bytes, as the `Bytes` it replaced did (and as `str` does).
impl Ord for ShortStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl ShortStr {
    pub const MAX_LEN: usize = 255;

    /// The longest string kept in place (the value stays 32 bytes).
    pub const INLINE_CAP: usize = 30;

    /// A string known at compile time.
    pub const fn from_static(s: &'static str) -> Self {
        ShortStr(Repr::Static(s))
    }

    /// Copies bytes that must be UTF-8 of at most 255 bytes.
    ///
    /// Returns `None` if they are not.
    ///
    /// Always inlined, like `Reader::short_str`: returned through memory,
    /// a string written piecewise here and read back whole by the caller
    /// stalled on store forwarding (perf: 70% of the decoder's time spent
    /// on short strings was that one load).
    #[inline(always)]
    pub fn from_utf8(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > Self::MAX_LEN {
            return None;
        }
        if bytes.len() <= Self::INLINE_CAP {
            // Names on the wire are nearly always ASCII: checked on the
            // words of the copy before `from_utf8` (byte by byte) is asked.
            let words = inline_words(bytes);
            let ascii = (words[0] | words[1] | words[2] | words[3]) & 0x8080_8080_8080_8080 == 0;
            if !ascii && std::str::from_utf8(bytes).is_err() {
                return None;
            }
            return Some(ShortStr(Repr::Inline {
                len: bytes.len() as u8,
                bytes: from_words(words),
            }));
        }
        std::str::from_utf8(bytes).ok().map(Self::copied)
    }

    /// Like [`ShortStr::from_utf8`], for bytes already in a `Bytes`.
    pub fn from_bytes(bytes: Bytes) -> Option<Self> {
        Self::from_utf8(&bytes)
    }

    /// Copies a string known to be at most 255 bytes.
    fn copied(s: &str) -> Self {
        debug_assert!(s.len() <= Self::MAX_LEN);
        if s.len() <= Self::INLINE_CAP {
            ShortStr(Repr::Inline {
                len: s.len() as u8,
                bytes: from_words(inline_words(s.as_bytes())),
            })
        } else {
            ShortStr(Repr::Heap(Arc::from(s)))
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Checked when it was made, so this cannot fail; fall back to ""
            // rather than panic if that invariant were ever broken.
            Repr::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Repr::Static(s) => s,
            Repr::Heap(s) => s,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Static(s) => s.as_bytes(),
            Repr::Heap(s) => s.as_bytes(),
        }
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// At most [`ShortStr::INLINE_CAP`] bytes as four little-endian words,
/// zero past the end, made of (overlapping) word loads shifted into place.
///
/// Done in registers on purpose: copying a string this short with
/// `copy_from_slice` is a call to memcpy, and copying it into a stack
/// buffer with overlapping stores and reading that back as words stalls on
/// store forwarding (perf put 60% of this function's time on that load).
#[inline(always)]
fn inline_words(src: &[u8]) -> [u64; 4] {
    let n = src.len().min(ShortStr::INLINE_CAP);
    let src = &src[..n];
    let load64 = |at: usize| u64::from_le_bytes(src[at..at + 8].try_into().expect("8 bytes"));
    let load32 = |at: usize| u64::from(u32::from_le_bytes(src[at..at + 4].try_into().expect("4 bytes")));
    // The last eight bytes, shifted so that those already in the full words
    // before `end` drop out (all of them when n is a multiple of 8).
    let tail = |end: usize| load64(n - 8).checked_shr(8 * (end - n) as u32).unwrap_or(0);
    // One arm per count of full words, so the words stay in registers
    // (an indexed store into an array sent them through the stack).
    match n / 8 {
        0 if n >= 4 => [load32(0) | (load32(n - 4) >> (8 * (8 - n))) << 32, 0, 0, 0],
        0 => {
            let mut word = 0;
            for (i, b) in src.iter().enumerate() {
                word |= u64::from(*b) << (8 * i);
            }
            [word, 0, 0, 0]
        }
        1 => [load64(0), tail(16), 0, 0],
        2 => [load64(0), load64(8), tail(24), 0],
        _ => [load64(0), load64(8), load64(16), tail(32)],
    }
}

/// The inline bytes of [`inline_words`].
#[inline(always)]
fn from_words(words: [u64; 4]) -> [u8; ShortStr::INLINE_CAP] {
    let mut bytes = [0; ShortStr::INLINE_CAP];
    bytes[..8].copy_from_slice(&words[0].to_le_bytes());
    bytes[8..16].copy_from_slice(&words[1].to_le_bytes());
    bytes[16..24].copy_from_slice(&words[2].to_le_bytes());
    bytes[24..].copy_from_slice(&words[3].to_le_bytes()[..ShortStr::INLINE_CAP - 24]);
    bytes
}

impl From<&str> for ShortStr {
    /// Copies the string; strings longer than 255 bytes are cut at a char
    /// boundary so the result always encodes.
    fn from(s: &str) -> Self {
        ShortStr::copied(truncate(s))
    }
}

impl From<String> for ShortStr {
    fn from(s: String) -> Self {
        ShortStr::copied(truncate(&s))
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

// Frames hold many short strings and are moved by value: keep the inline
// representation no larger than the shared slice it replaced.
const _: () = assert!(std::mem::size_of::<ShortStr>() == 32);
const _: () = assert!(std::mem::size_of::<Option<ShortStr>>() == 32);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length kept inline, with every byte distinct, comes back as it
    /// went in (the word assembly shifts by a different amount for each).
    #[test]
    fn inline_copy_every_length() {
        let source: Vec<u8> = (b'A'..=b'z').collect();
        for len in 0..=ShortStr::MAX_LEN.min(source.len()) {
            let s = ShortStr::from_utf8(&source[..len]).expect("ASCII");
            assert_eq!(s.as_bytes(), &source[..len], "length {len}");
            assert_eq!(s, ShortStr::from(std::str::from_utf8(&source[..len]).unwrap()));
        }
        let long = "ü".repeat(100);
        for len in 0..=long.len() {
            let bytes = &long.as_bytes()[..len];
            assert_eq!(
                ShortStr::from_utf8(bytes).map(|s| s.as_bytes().to_vec()),
                std::str::from_utf8(bytes).ok().map(|s| s.as_bytes().to_vec()),
                "length {len}"
            );
        }
        assert!(ShortStr::from_utf8(&[b'a'; 256]).is_none());
    }
}

//! The stored form of an entry: a fixed binary header, the tag stamps, then the serialized
//! payload.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "cm"
//! 2       1     format version (2)
//! 3       1     codec: serialization in the low 4 bits (0 JSON, 1 MessagePack, 2 postcard),
//!               compression in the high 4 (0 none, 1 LZ4, 2 zstd); see `codec.rs`
//! 4       1     flags: bit 0 = sliding (the backend's ttl alone says when it ends)
//! 5       1     number of tag stamps, n
//! 6       2     reserved, 0
//! 8       8     created at, ms since the Unix epoch, little endian
//! 16      8     logical expiry, ms since the Unix epoch
//! 24      4     load time in µs (how long the loader took)
//! 28      ..    n tag stamps: epoch (8), name length (2), name
//! ..      ..    payload
//! ```
//! Wall-clock times are used because entries are shared between processes. A tag stamp is the
//! epoch a tag had when the load began: a tag invalidation replaces the epoch, and an entry whose
//! stamps no longer match is a miss (see `docs/ARCHITECTURE.md`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{de::DeserializeOwned, Serialize};

use crate::codec::{self, Encoding};
use crate::error::{Error, ErrorKind, Result};

const MAGIC: [u8; 2] = *b"cm";
/// The envelope layout version this build reads and writes.
pub const FORMAT_VERSION: u8 = 2;
const FLAG_SLIDING: u8 = 1;
const HEADER_LEN: usize = 28;
const STAMP_HEADER_LEN: usize = 10;

/// A decoded header with its borrowed tag stamps and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// When the value was stored, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// When the value stops being fresh, ms since the Unix epoch.
    pub expires_at_ms: u64,
    /// How long the loader took to produce the value.
    pub load_micros: u32,
    /// Whether each read restarts the entry's ttl: its logical expiry then means nothing.
    pub sliding: bool,
    /// The epochs of the entry's tags when its load began.
    pub stamps: Stamps<'a>,
    /// How the payload is serialized and compressed: the codec byte (see the module's docs).
    pub codec: u8,
    /// The serialized value.
    pub payload: &'a [u8],
}

/// The tag stamps of an entry, in the order its tags were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamps<'a> {
    count: u8,
    bytes: &'a [u8],
}

impl<'a> Stamps<'a> {
    /// How many tags the entry carries.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether the entry carries no tag.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Each tag's name and the epoch it had when the entry's load began.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, u64)> + 'a {
        let mut rest = self.bytes;
        (0..self.count).map(move |_| {
            let (stamp, name) = split_stamp(rest).expect("validated by decode");
            rest = &rest[STAMP_HEADER_LEN + name.len()..];
            (name, stamp)
        })
    }

    /// Whether the entry was stamped with exactly `tags` (by name), each at the epoch given
    /// beside it.
    pub fn match_epochs<'t>(
        &self,
        tags: impl ExactSizeIterator<Item = &'t str>,
        epochs: &[Option<u64>],
    ) -> bool {
        self.len() == tags.len()
            && epochs.len() == tags.len()
            && self
                .iter()
                .zip(tags.zip(epochs))
                .all(|((name, stamp), (tag, epoch))| name == tag && *epoch == Some(stamp))
    }
}

/// The epoch and name at the start of `bytes`, `None` when they are not all there.
fn split_stamp(bytes: &[u8]) -> Option<(u64, &str)> {
    let epoch = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let length = usize::from(u16::from_le_bytes(bytes.get(8..10)?.try_into().ok()?));
    let name = bytes.get(STAMP_HEADER_LEN..STAMP_HEADER_LEN + length)?;
    Some((epoch, std::str::from_utf8(name).ok()?))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// What an entry records beside its value.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta<'a> {
    /// How long the value is fresh from now.
    pub ttl: Duration,
    /// How long the loader took.
    pub load_time: Duration,
    /// Whether reads restart the ttl.
    pub sliding: bool,
    /// Each tag and the epoch it had when the load began.
    pub stamps: &'a [(&'a str, u64)],
}

/// Serializes `value` as JSON into an envelope that is fresh for `ttl` from now, without tags.
pub fn encode<T: Serialize + ?Sized>(
    value: &T,
    ttl: Duration,
    load_time: Duration,
) -> Result<Vec<u8>> {
    encode_with(
        value,
        &Meta {
            ttl,
            load_time,
            ..Meta::default()
        },
    )
}

/// Serializes `value` as JSON into an envelope described by `meta`.
pub fn encode_with<T: Serialize + ?Sized>(value: &T, meta: &Meta<'_>) -> Result<Vec<u8>> {
    encode_as(value, meta, Encoding::default())
}

/// Serializes `value` with `encoding` into an envelope described by `meta`.
pub fn encode_as<T: Serialize + ?Sized>(
    value: &T,
    meta: &Meta<'_>,
    encoding: Encoding,
) -> Result<Vec<u8>> {
    append_value(header(meta)?, value, encoding)
}

/// The header and stamps of an envelope described by `meta`, for [`append_value`] to complete.
pub(crate) fn header(meta: &Meta<'_>) -> Result<Vec<u8>> {
    let count = u8::try_from(meta.stamps.len())
        .map_err(|_| Error::new(ErrorKind::Encode, "more than 255 tags"))?;
    let created_at_ms = now_ms();
    let expires_at_ms = created_at_ms.saturating_add(meta.ttl.as_millis() as u64);
    let load_micros = u32::try_from(meta.load_time.as_micros()).unwrap_or(u32::MAX);
    let stamps_len: usize = meta
        .stamps
        .iter()
        .map(|(name, _)| STAMP_HEADER_LEN + name.len())
        .sum();
    let mut bytes = Vec::with_capacity(HEADER_LEN + stamps_len + 128);
    bytes.extend_from_slice(&MAGIC);
    bytes.push(FORMAT_VERSION);
    // Set by `append_value`, which knows whether the payload was compressed.
    bytes.push(0);
    bytes.push(if meta.sliding { FLAG_SLIDING } else { 0 });
    bytes.push(count);
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&created_at_ms.to_le_bytes());
    bytes.extend_from_slice(&expires_at_ms.to_le_bytes());
    bytes.extend_from_slice(&load_micros.to_le_bytes());
    for (name, epoch) in meta.stamps {
        let length = u16::try_from(name.len())
            .map_err(|_| Error::new(ErrorKind::Encode, "a tag longer than 65535 bytes"))?;
        bytes.extend_from_slice(&epoch.to_le_bytes());
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(name.as_bytes());
    }
    Ok(bytes)
}

/// Completes the envelope begun by [`header`] with `value`, serialized and compressed as
/// `encoding` says: the only part of encoding that depends on the value's type.
pub(crate) fn append_value<T: Serialize + ?Sized>(
    mut bytes: Vec<u8>,
    value: &T,
    encoding: Encoding,
) -> Result<Vec<u8>> {
    bytes[CODEC_AT] = encoding.append(&mut bytes, value)?;
    Ok(bytes)
}

/// Where the codec byte is.
const CODEC_AT: usize = 3;

/// Reads the header and stamps of `bytes`; anything but a complete envelope of this format is
/// an error.
pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>> {
    let reject = |why: &str| Error::new(ErrorKind::Decode, why.to_owned());
    if bytes.len() < HEADER_LEN {
        return Err(reject("truncated envelope"));
    }
    if bytes[0..2] != MAGIC {
        return Err(reject("not a cachemacro entry"));
    }
    if bytes[2] != FORMAT_VERSION {
        return Err(reject("entry written by another format version"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let count = bytes[5];
    let mut end = HEADER_LEN;
    for _ in 0..count {
        let (_, name) = split_stamp(&bytes[end..]).ok_or_else(|| reject("truncated tag stamp"))?;
        end += STAMP_HEADER_LEN + name.len();
    }
    Ok(Envelope {
        created_at_ms: u64_at(8),
        expires_at_ms: u64_at(16),
        load_micros: u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes")),
        sliding: bytes[4] & FLAG_SLIDING != 0,
        stamps: Stamps {
            count,
            bytes: &bytes[HEADER_LEN..end],
        },
        codec: bytes[CODEC_AT],
        payload: &bytes[end..],
    })
}

impl Envelope<'_> {
    /// Deserializes the payload as `T`, with the codec and compression it records; an error
    /// when this build lacks them.
    pub fn value<T: DeserializeOwned>(&self) -> Result<T> {
        codec::decode(self.codec, self.payload)
    }

    /// Whether a function that writes with `encoding` reads this entry: see
    /// [`Encoding::reads`].
    pub fn is_read_by(&self, encoding: &Encoding) -> bool {
        encoding.reads(self.codec)
    }

    /// Whether the value is past its logical expiry at `now_ms`. A sliding entry never is: it
    /// lives while it is read, as long as the backend keeps it.
    pub fn is_expired_at(&self, now_ms: u64) -> bool {
        !self.sliding && now_ms >= self.expires_at_ms
    }

    /// How long the entry was fresh for when it was stored.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.expires_at_ms.saturating_sub(self.created_at_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_value_and_metadata() {
        let bytes = encode(
            &vec![1u32, 2, 3],
            Duration::from_secs(10),
            Duration::from_micros(1500),
        )
        .unwrap();
        let envelope = decode(&bytes).unwrap();
        assert_eq!(envelope.value::<Vec<u32>>().unwrap(), vec![1, 2, 3]);
        assert_eq!(envelope.load_micros, 1500);
        assert_eq!(envelope.expires_at_ms - envelope.created_at_ms, 10_000);
        assert!(!envelope.is_expired_at(envelope.created_at_ms));
        assert!(envelope.is_expired_at(envelope.expires_at_ms));
    }

    #[test]
    fn foreign_truncated_and_future_entries_are_rejected() {
        let bytes = encode(&"x", Duration::from_secs(1), Duration::ZERO).unwrap();
        assert!(decode(b"{\"json\":true}").unwrap_err().is_decode());
        assert!(decode(&bytes[..HEADER_LEN - 1]).unwrap_err().is_decode());
        let mut newer = bytes.clone();
        newer[2] = FORMAT_VERSION + 1;
        assert!(decode(&newer).unwrap_err().is_decode());
        let truncated_payload = &bytes[..bytes.len() - 1];
        assert!(decode(truncated_payload)
            .unwrap()
            .value::<String>()
            .unwrap_err()
            .is_decode());
    }

    #[test]
    fn stamps_round_trip_and_must_match_exactly() {
        let meta = Meta {
            ttl: Duration::from_secs(5),
            sliding: true,
            stamps: &[("org:7", 11), ("all", 12)],
            ..Meta::default()
        };
        let bytes = encode_with(&"v", &meta).unwrap();
        let envelope = decode(&bytes).unwrap();
        assert!(envelope.sliding);
        assert!(
            !envelope.is_expired_at(u64::MAX),
            "sliding entries end by the backend's ttl"
        );
        assert_eq!(envelope.ttl(), Duration::from_secs(5));
        assert_eq!(
            envelope.stamps.iter().collect::<Vec<_>>(),
            [("org:7", 11), ("all", 12)]
        );
        assert_eq!(envelope.value::<String>().unwrap(), "v");
        let tags = ["org:7", "all"];
        let matches = |tags: &[&str], epochs: &[Option<u64>]| {
            envelope.stamps.match_epochs(tags.iter().copied(), epochs)
        };
        assert!(matches(&tags, &[Some(11), Some(12)]));
        assert!(!matches(&tags, &[Some(11), Some(13)]));
        assert!(!matches(&tags, &[Some(11), None]));
        assert!(!matches(&tags[..1], &[Some(11)]));
        assert!(!matches(&["all", "org:7"], &[Some(12), Some(11)]));
        for cut in HEADER_LEN..HEADER_LEN + 20 {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn the_codec_byte_says_how_the_payload_was_written() {
        let json = encode(&"x", Duration::from_secs(1), Duration::ZERO).unwrap();
        let entry = decode(&json).unwrap();
        assert_eq!(
            entry.codec, 0,
            "JSON, uncompressed: what entries were before codecs"
        );
        assert!(entry.is_read_by(&Encoding::default()));
        let mut foreign = json.clone();
        foreign[CODEC_AT] = 0x0f;
        let entry = decode(&foreign).unwrap();
        assert!(!entry.is_read_by(&Encoding::default()));
        assert!(entry.value::<String>().unwrap_err().is_decode());
    }

    #[test]
    fn wrong_type_is_a_decode_error() {
        let bytes = encode(&"text", Duration::from_secs(1), Duration::ZERO).unwrap();
        assert!(decode(&bytes)
            .unwrap()
            .value::<u64>()
            .unwrap_err()
            .is_decode());
    }
}

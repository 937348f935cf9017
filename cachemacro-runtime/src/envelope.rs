//! The stored form of an entry: a fixed binary header followed by the serialized payload.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "cm"
//! 2       1     format version
//! 3       1     codec (0 = JSON)
//! 4       8     created at, ms since the Unix epoch, little endian
//! 12      8     logical expiry, ms since the Unix epoch
//! 20      4     load time in µs (how long the loader took)
//! 24      ..    payload
//! ```
//! Wall-clock times are used because entries are shared between processes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, ErrorKind, Result};

const MAGIC: [u8; 2] = *b"cm";
/// The envelope layout version this build reads and writes.
pub const FORMAT_VERSION: u8 = 1;
const CODEC_JSON: u8 = 0;
const HEADER_LEN: usize = 24;

/// A decoded header with a borrowed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// When the value was stored, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// When the value stops being fresh, ms since the Unix epoch.
    pub expires_at_ms: u64,
    /// How long the loader took to produce the value.
    pub load_micros: u32,
    /// The serialized value.
    pub payload: &'a [u8],
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// Serializes `value` into an envelope that is fresh for `ttl` from now.
pub fn encode<T: Serialize + ?Sized>(
    value: &T,
    ttl: Duration,
    load_time: Duration,
) -> Result<Vec<u8>> {
    let created_at_ms = now_ms();
    let expires_at_ms = created_at_ms.saturating_add(ttl.as_millis() as u64);
    let load_micros = u32::try_from(load_time.as_micros()).unwrap_or(u32::MAX);
    let mut bytes = Vec::with_capacity(HEADER_LEN + 128);
    bytes.extend_from_slice(&MAGIC);
    bytes.push(FORMAT_VERSION);
    bytes.push(CODEC_JSON);
    bytes.extend_from_slice(&created_at_ms.to_le_bytes());
    bytes.extend_from_slice(&expires_at_ms.to_le_bytes());
    bytes.extend_from_slice(&load_micros.to_le_bytes());
    serde_json::to_writer(&mut bytes, value)
        .map_err(|error| Error::new(ErrorKind::Encode, error.to_string()))?;
    Ok(bytes)
}

/// Reads the header of `bytes`; anything but a complete envelope of this format is an error.
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
    if bytes[3] != CODEC_JSON {
        return Err(reject("unknown codec"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    Ok(Envelope {
        created_at_ms: u64_at(4),
        expires_at_ms: u64_at(12),
        load_micros: u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes")),
        payload: &bytes[HEADER_LEN..],
    })
}

impl Envelope<'_> {
    /// Deserializes the payload as `T`.
    pub fn value<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(self.payload)
            .map_err(|error| Error::new(ErrorKind::Decode, error.to_string()))
    }

    /// Whether the value is past its logical expiry at `now_ms`.
    pub fn is_expired_at(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
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
    fn wrong_type_is_a_decode_error() {
        let bytes = encode(&"text", Duration::from_secs(1), Duration::ZERO).unwrap();
        assert!(decode(&bytes)
            .unwrap()
            .value::<u64>()
            .unwrap_err()
            .is_decode());
    }
}

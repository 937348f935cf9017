//! How a value becomes an entry's payload and back: its serialization format ([`Codec`]) and
//! optional compression ([`Compression`]), both recorded in the envelope's codec byte.
//!
//! JSON needs no feature; every other format and both compressions are behind cargo features of
//! this crate (`msgpack`, `postcard`, `lz4`, `zstd`), so the default build compiles none of them.
//! A function reads only entries of its own codec, and entries that are uncompressed or
//! compressed with its own compression: any other entry is a miss, which its next fill
//! overwrites (see [`Encoding::reads`]).

use std::borrow::Cow;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// How values are serialized.
///
/// The default, JSON, needs no feature. Pick one per function with `codec = "..."` on
/// `#[cached]` / `#[cache_put]`, or for a whole cache with
/// [`CacheBuilder::codec`](crate::CacheBuilder::codec). Entries record their codec: an entry
/// written with another codec is a miss, never a wrong value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Codec {
    /// JSON (`serde_json`): readable with `redis-cli`, works with every serde type.
    #[default]
    Json,
    /// MessagePack (`rmp-serde`), structs as maps with their field names, so that
    /// `#[serde(skip_serializing_if)]`, `#[serde(default)]` and added fields work as in JSON.
    /// Feature `msgpack`; `codec = "msgpack"`.
    #[cfg(feature = "msgpack")]
    MessagePack,
    /// postcard: the most compact, and not self-describing: a value is read back only as the
    /// type that wrote it, so `#[serde(skip_serializing_if)]`, `#[serde(flatten)]`, untagged
    /// enums and `serde_json::Value` do not round-trip, and a changed type needs a new
    /// `version = N`. Feature `postcard`; `codec = "postcard"`.
    #[cfg(feature = "postcard")]
    Postcard,
}

/// Whether, and how, large payloads are compressed.
///
/// A payload is compressed when it serializes to at least `min_size` bytes, and stored
/// compressed only when that made it smaller. Set per function with `compress = "..."` and
/// `compress_above = ...`, or for a whole cache with
/// [`CacheBuilder::compression`](crate::CacheBuilder::compression).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression (the default).
    #[default]
    None,
    /// LZ4 (`lz4_flex`, pure Rust): fast, a moderate ratio. Feature `lz4`; `compress = "lz4"`.
    #[cfg(feature = "lz4")]
    Lz4 {
        /// The smallest serialized payload, in bytes, that is compressed.
        min_size: usize,
    },
    /// Zstandard at level 3 (the `zstd` crate, which builds the C library): a better ratio,
    /// slower. Feature `zstd`; `compress = "zstd"`.
    #[cfg(feature = "zstd")]
    Zstd {
        /// The smallest serialized payload, in bytes, that is compressed.
        min_size: usize,
    },
}

impl Compression {
    /// The threshold of `compress = "lz4"` or `"zstd"` without `compress_above`: 1 KiB.
    pub const DEFAULT_MIN_SIZE: usize = 1024;

    /// The same compression from `min_size` bytes on; no compression stays none.
    #[cfg_attr(
        not(any(feature = "lz4", feature = "zstd")),
        allow(unused_variables, reason = "only compressions have a threshold")
    )]
    pub const fn above(self, min_size: usize) -> Self {
        match self {
            Compression::None => Compression::None,
            #[cfg(feature = "lz4")]
            Compression::Lz4 { .. } => Compression::Lz4 { min_size },
            #[cfg(feature = "zstd")]
            Compression::Zstd { .. } => Compression::Zstd { min_size },
        }
    }

    /// Its id in the envelope's codec byte (the high four bits) and its threshold.
    const fn id_and_min_size(self) -> (u8, usize) {
        match self {
            Compression::None => (NONE, usize::MAX),
            #[cfg(feature = "lz4")]
            Compression::Lz4 { min_size } => (LZ4, min_size),
            #[cfg(feature = "zstd")]
            Compression::Zstd { min_size } => (ZSTD, min_size),
        }
    }
}

// The codec byte: serialization in the low four bits, compression in the high four. Readers of
// format version 2 from before codecs accept only 0, so they take any other entry for a miss.
const JSON: u8 = 0;
#[cfg(feature = "msgpack")]
const MESSAGE_PACK: u8 = 1;
#[cfg(feature = "postcard")]
const POSTCARD: u8 = 2;
const NONE: u8 = 0;
#[cfg(feature = "lz4")]
const LZ4: u8 = 1;
#[cfg(feature = "zstd")]
const ZSTD: u8 = 2;

/// The most a compressed payload may claim to expand to: a bound on what a foreign or corrupt
/// entry can make a read allocate.
#[cfg(any(feature = "lz4", feature = "zstd"))]
const MAX_DECOMPRESSED: usize = 256 * 1024 * 1024;

impl Codec {
    const fn id(self) -> u8 {
        match self {
            Codec::Json => JSON,
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => MESSAGE_PACK,
            #[cfg(feature = "postcard")]
            Codec::Postcard => POSTCARD,
        }
    }

    fn from_id(id: u8) -> Option<Codec> {
        match id {
            JSON => Some(Codec::Json),
            #[cfg(feature = "msgpack")]
            MESSAGE_PACK => Some(Codec::MessagePack),
            #[cfg(feature = "postcard")]
            POSTCARD => Some(Codec::Postcard),
            _ => None,
        }
    }
}

/// How one function writes its entries: codec and compression, resolved from its own arguments
/// and the cache's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Encoding {
    /// The serialization.
    pub codec: Codec,
    /// The compression of large payloads.
    pub compression: Compression,
}

impl Encoding {
    /// Whether an entry whose codec byte is `id` is one this encoding reads: the same codec,
    /// uncompressed (a payload below the threshold) or compressed as this encoding compresses.
    /// An entry of another codec or compression is a miss, which the fill overwrites, so that
    /// the entries of a function converge to its encoding.
    #[inline]
    pub fn reads(&self, id: u8) -> bool {
        let compression = id >> 4;
        id & 0x0f == self.codec.id()
            && (compression == NONE || compression == self.compression.id_and_min_size().0)
    }

    /// Appends `value` to `bytes` serialized, compressed when large enough, and returns the
    /// codec byte that says how.
    pub(crate) fn append<T: Serialize + ?Sized>(
        &self,
        bytes: &mut Vec<u8>,
        value: &T,
    ) -> Result<u8> {
        let (compression, min_size) = self.compression.id_and_min_size();
        let start = bytes.len();
        serialize(self.codec, bytes, value)?;
        if bytes.len() - start < min_size {
            return Ok(self.codec.id());
        }
        let compressed = compress(compression, &bytes[start..]);
        if compressed.len() >= bytes.len() - start {
            return Ok(self.codec.id());
        }
        bytes.truncate(start);
        bytes.extend_from_slice(&compressed);
        Ok(self.codec.id() | compression << 4)
    }
}

/// Deserializes a payload written with the codec byte `id`: the only part of decoding that
/// depends on the value's type. An uncompressed JSON payload, the default, is read in place.
#[inline]
pub fn decode<T: DeserializeOwned>(id: u8, payload: &[u8]) -> Result<T> {
    if id == JSON {
        return serde_json::from_slice(payload).map_err(decode_error);
    }
    let codec = Codec::from_id(id & 0x0f).ok_or_else(|| unsupported(id))?;
    let payload = decompress(id >> 4, payload)?;
    deserialize(codec, &payload)
}

fn serialize<T: Serialize + ?Sized>(codec: Codec, bytes: &mut Vec<u8>, value: &T) -> Result<()> {
    match codec {
        Codec::Json => serde_json::to_writer(bytes, value).map_err(encode_error),
        #[cfg(feature = "msgpack")]
        Codec::MessagePack => rmp_serde::encode::write_named(bytes, value).map_err(encode_error),
        #[cfg(feature = "postcard")]
        Codec::Postcard => postcard::to_extend(value, std::mem::take(bytes))
            .map(|extended| *bytes = extended)
            .map_err(encode_error),
    }
}

fn deserialize<T: DeserializeOwned>(codec: Codec, payload: &[u8]) -> Result<T> {
    match codec {
        Codec::Json => serde_json::from_slice(payload).map_err(decode_error),
        #[cfg(feature = "msgpack")]
        Codec::MessagePack => rmp_serde::from_slice(payload).map_err(decode_error),
        // postcard reads what the type asks for and no more; bytes left over mean the entry was
        // written as another type.
        #[cfg(feature = "postcard")]
        Codec::Postcard => match postcard::take_from_bytes(payload) {
            Ok((value, [])) => Ok(value),
            Ok(_) => Err(Error::new(ErrorKind::Decode, "bytes left after the value")),
            Err(error) => Err(decode_error(error)),
        },
    }
}

fn compress(compression: u8, raw: &[u8]) -> Vec<u8> {
    match compression {
        #[cfg(feature = "lz4")]
        LZ4 => lz4_flex::compress_prepend_size(raw),
        #[cfg(feature = "zstd")]
        // Only an allocation failure makes it fail: then the payload is stored uncompressed.
        ZSTD => zstd::bulk::compress(raw, 3).unwrap_or_else(|_| raw.to_vec()),
        _ => raw.to_vec(),
    }
}

fn decompress(compression: u8, payload: &[u8]) -> Result<Cow<'_, [u8]>> {
    match compression {
        NONE => Ok(Cow::Borrowed(payload)),
        #[cfg(feature = "lz4")]
        LZ4 => {
            let size = payload
                .get(..4)
                .map(|size| u32::from_le_bytes(size.try_into().expect("4 bytes")) as usize)
                .filter(|size| *size <= MAX_DECOMPRESSED)
                .ok_or_else(|| Error::new(ErrorKind::Decode, "bad LZ4 payload size"))?;
            lz4_flex::decompress(&payload[4..], size)
                .map(Cow::Owned)
                .map_err(decode_error)
        }
        #[cfg(feature = "zstd")]
        ZSTD => {
            let size = zstd::zstd_safe::get_frame_content_size(payload)
                .ok()
                .flatten()
                .filter(|size| *size <= MAX_DECOMPRESSED as u64)
                .ok_or_else(|| Error::new(ErrorKind::Decode, "bad zstd frame size"))?;
            zstd::bulk::decompress(payload, size as usize)
                .map(Cow::Owned)
                .map_err(decode_error)
        }
        _ => Err(unsupported(compression << 4)),
    }
}

fn unsupported(id: u8) -> Error {
    Error::new(
        ErrorKind::Decode,
        format!("codec byte {id:#04x}: a codec or compression this build lacks"),
    )
}

fn encode_error(error: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Encode, error.to_string())
}

fn decode_error(error: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Decode, error.to_string())
}

/// What `codec = "..."` and `compress = "..."` expand to. Each codec and compression behind a
/// feature is reached through a trait implemented only when the feature is on, so that naming
/// it without the feature is a compile error saying which feature to enable.
pub mod gates {
    use super::{Codec, Compression};

    macro_rules! gate {
        ($marker:ident, $gate:ident, $feature:literal, $item:ident: $type:ty = $value:expr,
         $message:literal, $note:literal) => {
            /// The marker of a feature-gated codec or compression.
            #[derive(Debug)]
            pub struct $marker;

            /// Implemented when the feature is on.
            #[diagnostic::on_unimplemented(message = $message, label = "needs a feature of cachemacro-runtime", note = $note)]
            pub trait $gate {
                /// What the argument sets.
                const $item: $type;
            }

            #[cfg(feature = $feature)]
            impl $gate for $marker {
                const $item: $type = $value;
            }
        };
    }

    gate!(
        Msgpack, MsgpackEnabled, "msgpack", CODEC: Codec = Codec::MessagePack,
        "`codec = \"msgpack\"` needs the `msgpack` feature of cachemacro-runtime",
        "enable it where cachemacro-runtime is a dependency: `features = [\"msgpack\"]`"
    );
    gate!(
        Postcard, PostcardEnabled, "postcard", CODEC: Codec = Codec::Postcard,
        "`codec = \"postcard\"` needs the `postcard` feature of cachemacro-runtime",
        "enable it where cachemacro-runtime is a dependency: `features = [\"postcard\"]`"
    );
    gate!(
        Lz4, Lz4Enabled, "lz4", COMPRESSION: Compression = Compression::Lz4 {
            min_size: Compression::DEFAULT_MIN_SIZE
        },
        "`compress = \"lz4\"` needs the `lz4` feature of cachemacro-runtime",
        "enable it where cachemacro-runtime is a dependency: `features = [\"lz4\"]`"
    );
    gate!(
        Zstd, ZstdEnabled, "zstd", COMPRESSION: Compression = Compression::Zstd {
            min_size: Compression::DEFAULT_MIN_SIZE
        },
        "`compress = \"zstd\"` needs the `zstd` feature of cachemacro-runtime",
        "enable it where cachemacro-runtime is a dependency: `features = [\"zstd\"]`"
    );
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Role {
        Admin,
        Member { since: u32 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        id: u64,
        name: String,
        email: Option<String>,
        nickname: Option<String>,
        role: Role,
        roles: Vec<Role>,
        scores: Vec<f64>,
    }

    fn row(text_len: usize) -> Row {
        Row {
            id: 7,
            name: "n".repeat(text_len),
            email: None,
            nickname: Some("ada".into()),
            role: Role::Member { since: 2024 },
            roles: vec![Role::Admin, Role::Member { since: 1 }],
            scores: vec![1.5, -2.0],
        }
    }

    /// A field left out when `None`: fine for self-describing codecs only.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sparse {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        id: u64,
    }

    /// Every encoding this build has.
    fn encodings() -> Vec<Encoding> {
        let codecs = [
            Codec::Json,
            #[cfg(feature = "msgpack")]
            Codec::MessagePack,
            #[cfg(feature = "postcard")]
            Codec::Postcard,
        ];
        let compressions = [
            Compression::None,
            #[cfg(feature = "lz4")]
            Compression::Lz4 { min_size: 1000 },
            #[cfg(feature = "zstd")]
            Compression::Zstd { min_size: 1000 },
        ];
        codecs
            .iter()
            .flat_map(|&codec| {
                compressions
                    .iter()
                    .map(move |&compression| Encoding { codec, compression })
            })
            .collect()
    }

    #[test]
    fn every_encoding_round_trips_options_and_enums_small_and_large() {
        for encoding in encodings() {
            for value in [row(3), row(4000)] {
                let mut bytes = b"head".to_vec();
                let id = encoding.append(&mut bytes, &value).unwrap();
                assert!(encoding.reads(id), "{encoding:?} reads its own entries");
                let decoded: Row = decode(id, &bytes[4..]).unwrap();
                assert_eq!(decoded, value, "{encoding:?}");
                let compressed = id >> 4 != NONE;
                let large = value.name.len() > 1000;
                assert_eq!(
                    compressed,
                    large && encoding.compression != Compression::None,
                    "{encoding:?}: compressed above the threshold only"
                );
            }
        }
    }

    #[test]
    fn self_describing_codecs_round_trip_skipped_fields_and_postcard_refuses_them() {
        let sparse = Sparse { email: None, id: 9 };
        for encoding in encodings() {
            let mut bytes = Vec::new();
            let id = encoding.append(&mut bytes, &sparse).unwrap();
            let decoded = decode::<Sparse>(id, &bytes);
            #[cfg(feature = "postcard")]
            if encoding.codec == Codec::Postcard {
                // Not a wrong value: an error, so a miss.
                assert!(decoded.unwrap_err().is_decode());
                continue;
            }
            assert_eq!(decoded.unwrap(), sparse, "{encoding:?}");
        }
    }

    #[test]
    fn an_encoding_reads_no_other_codec_or_compression() {
        for writer in encodings() {
            let mut bytes = Vec::new();
            let id = writer.append(&mut bytes, &row(4000)).unwrap();
            for reader in encodings() {
                let expected = reader.codec == writer.codec
                    && (reader.compression == writer.compression
                        || writer.compression == Compression::None);
                assert_eq!(reader.reads(id), expected, "{writer:?} read by {reader:?}");
            }
        }
    }

    #[test]
    fn unknown_codecs_and_compressions_are_decode_errors() {
        assert!(decode::<u64>(0x0f, b"1").unwrap_err().is_decode());
        assert!(decode::<u64>(0xf0, b"1").unwrap_err().is_decode());
        assert!(!Encoding::default().reads(0x0f));
        assert!(!Encoding::default().reads(0xf0));
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn an_lz4_payload_claiming_a_huge_size_is_rejected_before_allocating() {
        let mut payload = u32::MAX.to_le_bytes().to_vec();
        payload.extend_from_slice(b"xxxx");
        assert!(decode::<u64>(JSON | LZ4 << 4, &payload)
            .unwrap_err()
            .is_decode());
    }

    #[cfg(feature = "postcard")]
    #[test]
    fn a_postcard_entry_read_as_a_shorter_type_is_a_decode_error() {
        let encoding = Encoding {
            codec: Codec::Postcard,
            compression: Compression::None,
        };
        let mut bytes = Vec::new();
        let id = encoding.append(&mut bytes, &(1u8, 2u8)).unwrap();
        assert!(decode::<u8>(id, &bytes).unwrap_err().is_decode());
    }
}

//! Building cache keys from templates without collisions.
//!
//! A rendered value may only contain characters of [`is_plain`]; every other byte is written as
//! `%XX`. The macro requires, between two placeholders, at least one character that no rendered
//! value contains (neither plain nor `%`: a separator such as `:`), so a rendered key can be split
//! back into its values: `"<a>:<b>"` renders `("1:2", "3")` as `1%3A2:3` and `("1", "2:3")` as
//! `1:2%3A3`. Braces are never plain, so a value can never introduce a Redis Cluster hash tag.
//!
//! A default key (`#[cached]` without `key`) names its function before its arguments:
//! `app::users::Users::name(7)`. The function's path goes through [`KeyBuilder::path`], which
//! keeps `:` as well, so the path ends at the first byte that is neither plain, `%` nor `:`;
//! the macro always writes one there (`[`, `<` or `(`), so no function's path is a prefix of
//! another's key.

use std::fmt::{self, Display, Write};

/// Whether `byte` may appear unescaped in a rendered value.
pub const fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
}

/// Whether `byte` may appear unescaped in a rendered path: plain, or the `:` of `::`.
const fn is_path_plain(byte: u8) -> bool {
    is_plain(byte) || byte == b':'
}

/// Appends template literals and escaped values into one key.
#[derive(Debug, Default)]
pub struct KeyBuilder {
    key: String,
}

impl KeyBuilder {
    /// Starts an empty key with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            key: String::with_capacity(capacity),
        }
    }

    /// Appends template text verbatim.
    pub fn literal(&mut self, text: &str) -> &mut Self {
        self.key.push_str(text);
        self
    }

    /// Appends a value rendered with `Display`, escaping every character that is not plain.
    pub fn value<V: Display + ?Sized>(&mut self, value: &V) -> &mut Self {
        // Writing through the escaper avoids a temporary String per value.
        let _ = write!(Escaper::new(&mut self.key, is_plain), "{value}");
        self
    }

    /// Appends a Rust path or type name, such as `app::Repo<u8>`, escaping like
    /// [`value`](Self::value) except that `:` stays as it is, so that `::` reads as written.
    pub fn path(&mut self, path: &str) -> &mut Self {
        let _ = Escaper::new(&mut self.key, is_path_plain).write_str(path);
        self
    }

    /// The finished key.
    pub fn finish(self) -> String {
        self.key
    }
}

/// A key that lives beside the entry key `key` in the same Redis Cluster hash slot, so one script
/// can touch both, and that starts with the cache's `prefix` as every key the cache writes does
/// (an ACL user limited to `~app:*` reaches all of them).
///
/// - `key` has a hash tag: `key` + `suffix` keeps it (`{tenant}:user:1#v`);
/// - otherwise `key` whole is hashed, so it becomes the tag: `app:{app:user:1}#v`;
/// - a `key` with a `}` cannot be a tag's content, so the tag is a short string that hashes to
///   the same slot as `key`, followed by `key` itself so companions of two keys stay distinct:
///   `{8}a}b#v` for `a}b`.
///
/// Only a prefix with a `{` that no `}` closes defeats all three; its companions are then merely
/// prefixed, which is enough on a single Redis.
pub fn companion(prefix: &str, key: &str, suffix: &str) -> String {
    if hash_tag(key).is_some() {
        return [key, suffix].concat();
    }
    let whole = [prefix, "{", key, "}", suffix].concat();
    if hash_tag(&whole) == Some(key) {
        return whole;
    }
    let tag = slot_tag(slot(key));
    let tagged = [prefix, "{", tag, "}", key, suffix].concat();
    if hash_tag(&tagged) == Some(tag) {
        return tagged;
    }
    [key, suffix].concat()
}

/// The part of `key` Redis Cluster hashes when it is not the whole key: after the first `{`, up
/// to the first `}` after it, when that is not empty.
pub fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let length = key[open + 1..].find('}')?;
    (length > 0).then(|| &key[open + 1..open + 1 + length])
}

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of its hash tag, or of the whole key,
/// modulo 16384.
pub fn slot(key: &str) -> u16 {
    let hashed = hash_tag(key).unwrap_or(key);
    crc16(hashed.as_bytes()) % SLOTS
}

const SLOTS: u16 = 16384;

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The shortest decimal number that hashes to `slot`, for keys that cannot be their own tag.
/// The table is built once, on first need: about 160,000 CRCs.
fn slot_tag(slot: u16) -> &'static str {
    static TAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        let mut tags = vec![String::new(); usize::from(SLOTS)];
        let mut missing = usize::from(SLOTS);
        let mut number = 0u64;
        while missing > 0 {
            let text = number.to_string();
            let tag = &mut tags[usize::from(crc16(text.as_bytes()) % SLOTS)];
            if tag.is_empty() {
                *tag = text;
                missing -= 1;
            }
            number += 1;
        }
        tags
    });
    &tags[usize::from(slot)]
}

/// The path of the item that holds a function, from the type name of a marker item declared in
/// its body (`app::Repo::get::{{closure}}::marker`): the marker, the segments of the closures and
/// async bodies around it, and `function`, the name of the function whose body declares it, are
/// cut off (`app::Repo`). The compiler resolves that name, so it tells apart what the source
/// alone cannot: an associated function from a free one, and the impl or trait it belongs to.
///
/// A name that does not have this shape is returned whole: still one name per function, though a
/// companion would then not find the entry of its function.
pub fn scope(marker: &'static str, function: &str) -> &'static str {
    let Some((mut path, _marker)) = marker.rsplit_once("::") else {
        return marker;
    };
    while let Some((parent, last)) = path.rsplit_once("::") {
        if !(last.starts_with("{{") && last.ends_with("}}")) {
            break;
        }
        path = parent;
    }
    path.strip_suffix(function)
        .and_then(|parent| parent.strip_suffix("::"))
        .unwrap_or(marker)
}

struct Escaper<'a> {
    key: &'a mut String,
    keeps: fn(u8) -> bool,
}

impl<'a> Escaper<'a> {
    fn new(key: &'a mut String, keeps: fn(u8) -> bool) -> Self {
        Self { key, keeps }
    }
}

impl Write for Escaper<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if text.bytes().all(self.keeps) {
            self.key.push_str(text);
            return Ok(());
        }
        for byte in text.bytes() {
            if (self.keeps)(byte) {
                self.key.push(byte as char);
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                self.key.push('%');
                self.key.push(HEX[usize::from(byte >> 4)] as char);
                self.key.push(HEX[usize::from(byte & 0xF)] as char);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(a: &str, b: &str) -> String {
        let mut key = KeyBuilder::default();
        key.value(a).literal(":").value(b);
        key.finish()
    }

    #[test]
    fn separators_inside_values_do_not_collide() {
        assert_ne!(render("1:2", "3"), render("1", "2:3"));
        assert_eq!(render("1:2", "3"), "1%3A2:3");
    }

    #[test]
    fn escape_character_is_itself_escaped() {
        assert_ne!(render("%3A", ""), render(":", ""));
        assert_eq!(render("%", "x"), "%25:x");
    }

    #[test]
    fn hash_tags_and_unicode_are_escaped() {
        assert_eq!(render("{a}", "é"), "%7Ba%7D:%C3%A9");
    }

    #[test]
    fn companions_share_the_hash_slot_and_the_prefix() {
        assert_eq!(companion("", "user:1", "#v"), "{user:1}#v");
        assert_eq!(companion("app:", "app:user:1", "#v"), "app:{app:user:1}#v");
        assert_eq!(companion("", "{tenant}:user:1", "#v"), "{tenant}:user:1#v");
        for (prefix, key) in [
            ("", "user:1"),
            ("app:", "app:user:1"),
            ("", "a}b"),
            ("", "{}x"),
            ("", "{a}b}"),
            ("p}", "p}x"),
            ("", "}{"),
            ("{t}:", "{t}:x}"),
        ] {
            let companion = companion(prefix, key, "#lock");
            assert_eq!(slot(&companion), slot(key), "{key} vs {companion}");
            assert!(companion.starts_with(prefix), "{companion}");
            assert_ne!(companion, key);
        }
    }

    #[test]
    fn hash_tags_follow_the_cluster_rule() {
        assert_eq!(hash_tag("{user1000}.following"), Some("user1000"));
        assert_eq!(hash_tag("foo{}{bar}"), None);
        assert_eq!(hash_tag("foo{{bar}}zap"), Some("{bar"));
        assert_eq!(hash_tag("foo{bar}{zap}"), Some("bar"));
        assert_eq!(hash_tag("a}b"), None);
        // Redis's own reference value for CRC16/XMODEM.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot("{user1000}.following"), slot("user1000"));
    }

    #[test]
    fn paths_keep_colons_and_escape_the_rest() {
        let mut key = KeyBuilder::default();
        key.path("app::Repo<u8, ':'>")
            .literal("(")
            .value("a::b")
            .literal(")");
        assert_eq!(key.finish(), "app::Repo%3Cu8%2C%20%27:%27%3E(a%3A%3Ab)");
    }

    #[test]
    fn scope_cuts_the_marker_the_closures_and_the_function() {
        let cases = [
            ("app::users::get::{{closure}}::marker", "get", "app::users"),
            (
                "app::Repo<_>::get::{{closure}}::marker",
                "get",
                "app::Repo<_>",
            ),
            (
                "<app::Db as app::A>::get::{{closure}}::{{closure}}::marker",
                "get",
                "<app::Db as app::A>",
            ),
            (
                "app::outer::{{closure}}::get::marker",
                "get",
                "app::outer::{{closure}}",
            ),
            (
                "app::m::invalidate_get::{{closure}}::marker",
                "invalidate_get",
                "app::m",
            ),
        ];
        for (marker, function, scope_path) in cases {
            assert_eq!(scope(marker, function), scope_path, "{marker}");
        }
    }

    #[test]
    fn scope_of_an_unexpected_name_is_the_whole_name() {
        // `et` is the end of `get`, not a segment of its own.
        let marker = "app::get::{{closure}}::marker";
        assert_eq!(scope(marker, "et"), marker);
        assert_eq!(scope(marker, "other"), marker);
        assert_eq!(scope("marker", "get"), "marker");
    }

    #[test]
    fn numbers_render_plain() {
        let mut key = KeyBuilder::with_capacity(8);
        key.literal("user:").value(&42u64);
        assert_eq!(key.finish(), "user:42");
    }
}

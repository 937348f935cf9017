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

/// The bytes of a [`Key`] held inline: enough for most keys, and a `Key` of 128 bytes.
const INLINE: usize = 103;

/// A rendered key: held inline up to 103 bytes, so rendering the key of a hit costs no
/// allocation, and on the heap once longer. Derefs to the key's text.
#[derive(Clone)]
pub struct Key {
    inline: [u8; INLINE],
    /// How many bytes of `inline` the key takes, while it fits there.
    len: u8,
    /// The key, once it no longer fits inline.
    spilled: Option<String>,
}

impl Key {
    /// An empty key.
    pub const fn new() -> Self {
        Self {
            inline: [0; INLINE],
            len: 0,
            spilled: None,
        }
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        match &self.spilled {
            Some(spilled) => spilled,
            None => {
                let bytes = &self.inline[..usize::from(self.len)];
                debug_assert!(std::str::from_utf8(bytes).is_ok());
                // SAFETY: `push_str` is the only writer, and it copies whole `&str`s to the end
                // of the used bytes and never truncates, so they are always valid UTF-8.
                // Checking them again would cost a scan of the key on every hit.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
        }
    }

    /// Appends `text`; a key that outgrows its inline room moves to the heap, with room for at
    /// least `capacity` bytes.
    fn push_str(&mut self, text: &str, capacity: usize) {
        if let Some(spilled) = &mut self.spilled {
            spilled.push_str(text);
            return;
        }
        let len = usize::from(self.len);
        let end = len + text.len();
        if let Some(room) = self.inline.get_mut(len..end) {
            room.copy_from_slice(text.as_bytes());
            self.len = end as u8;
            return;
        }
        let mut spilled = String::with_capacity(capacity.max(2 * end));
        spilled.push_str(self.as_str());
        spilled.push_str(text);
        self.spilled = Some(spilled);
    }
}

impl Default for Key {
    fn default() -> Self {
        Self::new()
    }
}

impl std::ops::Deref for Key {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Key> for String {
    fn from(key: Key) -> String {
        match key.spilled {
            Some(spilled) => spilled,
            None => key.as_str().to_owned(),
        }
    }
}

impl From<&str> for Key {
    fn from(text: &str) -> Key {
        let mut key = Key::new();
        key.push_str(text, 0);
        key
    }
}

/// The parts joined by `:`, each rendered with `Display` and escaped as a template escapes the
/// values of its placeholders (every byte but ASCII letters, digits, `_`, `-` and `.` becomes
/// `%XX`), so that different lists of parts never give one string: what a `key = <expression>`
/// should be built with. [`key_parts!`](crate::key_parts!) calls it.
///
/// ```
/// use cachemacro_runtime::join_key_parts;
/// assert_eq!(join_key_parts(&[&"user", &7, &"a:b"]), "user:7:a%3Ab");
/// ```
pub fn join_key_parts(parts: &[&dyn Display]) -> String {
    let mut builder = KeyBuilder::with_capacity(parts.len() * 16);
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            builder.literal(":");
        }
        builder.value(part);
    }
    builder.finish().as_str().to_owned()
}

/// Appends template literals and escaped values into one key.
#[derive(Debug, Default)]
pub struct KeyBuilder {
    key: Key,
    /// The room a key that outgrows its inline bytes gets on the heap.
    capacity: usize,
}

impl KeyBuilder {
    /// Starts an empty key expected to take up to `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            key: Key::new(),
            capacity,
        }
    }

    /// Appends template text verbatim.
    pub fn literal(&mut self, text: &str) -> &mut Self {
        self.key.push_str(text, self.capacity);
        self
    }

    /// Appends a value rendered with `Display`, escaping every character that is not plain.
    pub fn value<V: Display + ?Sized>(&mut self, value: &V) -> &mut Self {
        // Writing through the escaper avoids a temporary String per value.
        let _ = write!(Escaper::new(self, is_plain), "{value}");
        self
    }

    /// Appends an integer, as [`value`](Self::value) renders it: its digits need neither
    /// escaping nor a formatter, which costs more than the rest of a short key on every hit.
    pub fn integer<I: KeyInteger>(&mut self, value: I) -> &mut Self {
        let mut digits = [0; MAX_INTEGER_DIGITS];
        let text = value.render(&mut digits);
        self.key.push_str(text, self.capacity);
        self
    }

    /// Appends a Rust path or type name, such as `app::Repo<u8>`, escaping like
    /// [`value`](Self::value) except that `:` stays as it is, so that `::` reads as written.
    pub fn path(&mut self, path: &str) -> &mut Self {
        let _ = Escaper::new(self, is_path_plain).write_str(path);
        self
    }

    /// The finished key.
    pub fn finish(self) -> Key {
        self.key
    }
}

/// The longest decimal rendering of a primitive integer: `-170141183460469231731687303715884105728`.
const MAX_INTEGER_DIGITS: usize = 40;

/// A primitive integer, rendered into a key by [`KeyBuilder::integer`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a primitive integer",
    note = "a key renders a value that is not a primitive integer with `Display`"
)]
pub trait KeyInteger: Copy + sealed::Sealed {
    /// Writes the decimal digits, with a `-` when negative, at the end of `buffer` and returns
    /// them: the same text as `Display`.
    fn render(self, buffer: &mut [u8; MAX_INTEGER_DIGITS]) -> &str;
}

mod sealed {
    pub trait Sealed {}
}

/// Writes `magnitude`'s digits, and a `-` when `negative`, at the end of `buffer`; one
/// function per width, so that integers of 64 bits and less divide as such (a multiplication).
macro_rules! render_decimal {
    ($name:ident: $wide:ty) => {
        fn $name(
            mut magnitude: $wide,
            negative: bool,
            buffer: &mut [u8; MAX_INTEGER_DIGITS],
        ) -> &str {
            let mut start = buffer.len();
            loop {
                start -= 1;
                buffer[start] = b'0' + (magnitude % 10) as u8;
                magnitude /= 10;
                if magnitude == 0 {
                    break;
                }
            }
            if negative {
                start -= 1;
                buffer[start] = b'-';
            }
            let digits = &buffer[start..];
            debug_assert!(digits.is_ascii());
            // SAFETY: only ASCII digits and `-` were written from `start` on. Checking them would
            // cost more than writing them.
            unsafe { std::str::from_utf8_unchecked(digits) }
        }
    };
}

render_decimal!(render_u64: u64);
render_decimal!(render_u128: u128);

macro_rules! key_integers {
    ($render:ident as $wide:ty: unsigned $($unsigned:ty),* ; signed $($signed:ty),*) => {
        $(
            impl sealed::Sealed for $unsigned {}
            impl KeyInteger for $unsigned {
                fn render(self, buffer: &mut [u8; MAX_INTEGER_DIGITS]) -> &str {
                    $render(self as $wide, false, buffer)
                }
            }
        )*
        $(
            impl sealed::Sealed for $signed {}
            impl KeyInteger for $signed {
                fn render(self, buffer: &mut [u8; MAX_INTEGER_DIGITS]) -> &str {
                    $render(self.unsigned_abs() as $wide, self < 0, buffer)
                }
            }
        )*
    };
}

key_integers!(render_u64 as u64: unsigned u8, u16, u32, u64, usize; signed i8, i16, i32, i64, isize);
key_integers!(render_u128 as u128: unsigned u128; signed i128);

/// The entry key whose companion under `suffix` is `key` (see [`companion`]), if `key` is one.
pub(crate) fn companion_entry<'k>(prefix: &str, key: &'k str, suffix: &str) -> Option<&'k str> {
    let stem = key.strip_suffix(suffix)?;
    // The forms that add braces first: `{user:1}#v` is the version of `user:1`, though it would
    // also be that of an entry `{user:1}`, which only a template's own text could write.
    let mut candidates = Vec::with_capacity(3);
    if let Some(tagged) = stem
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('{'))
    {
        if let Some(whole) = tagged.strip_suffix('}') {
            candidates.push(whole);
        }
        if let Some((_, after)) = tagged.split_once('}') {
            candidates.push(after);
        }
    }
    candidates.push(stem);
    candidates
        .into_iter()
        .find(|candidate| companion(prefix, candidate, suffix) == key)
}

/// The entry key `key` belongs to: itself, or the entry whose version or fill lock it is.
pub(crate) fn entry_of(prefix: &str, key: &str) -> String {
    ["#v", "#lock"]
        .iter()
        .find_map(|suffix| companion_entry(prefix, key, suffix))
        .unwrap_or(key)
        .to_owned()
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

/// Whether [`companion`] keeps every key under `prefix` in its entry's hash slot: the prefix has
/// no `{`, or its first `{` opens a hash tag that the prefix closes (then every key under it is in
/// one slot). A first `{` that the prefix leaves open, or closes at once (`{}`: Redis then hashes
/// the whole key), takes the hash tag out of the companions' hands.
pub fn prefix_keeps_slots(prefix: &str) -> bool {
    match prefix.find('{') {
        None => true,
        Some(open) => matches!(prefix[open + 1..].find('}'), Some(length) if length > 0),
    }
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

pub(crate) const SLOTS: u16 = 16384;

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
    builder: &'a mut KeyBuilder,
    keeps: fn(u8) -> bool,
}

impl<'a> Escaper<'a> {
    fn new(builder: &'a mut KeyBuilder, keeps: fn(u8) -> bool) -> Self {
        Self { builder, keeps }
    }
}

impl Write for Escaper<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        // Runs of kept bytes go in whole. Kept bytes are ASCII, so every run starts and ends on
        // a character boundary.
        let mut run = 0;
        for (at, &byte) in text.as_bytes().iter().enumerate() {
            if (self.keeps)(byte) {
                continue;
            }
            if run < at {
                self.builder.literal(&text[run..at]);
            }
            let escaped = [
                b'%',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xF)],
            ];
            self.builder
                .literal(std::str::from_utf8(&escaped).expect("ASCII"));
            run = at + 1;
        }
        if run < text.len() {
            self.builder.literal(&text[run..]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn integers_render_as_display_does() {
        fn both<I: super::KeyInteger + std::fmt::Display>(value: I) {
            let mut fast = super::KeyBuilder::default();
            fast.integer(value);
            let mut formatted = super::KeyBuilder::default();
            formatted.value(&value);
            assert_eq!(&*fast.finish(), &*formatted.finish(), "{value}");
        }
        for value in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
            both(value);
        }
        for value in [0, -1, 7, -10, i64::MIN, i64::MAX] {
            both(value);
        }
        both(u8::MAX);
        both(i8::MIN);
        both(u16::MAX);
        both(i32::MIN);
        both(usize::MAX);
        both(isize::MIN);
        both(u128::MAX);
        both(i128::MIN);
        both(i128::MAX);
    }

    use super::*;

    fn render(a: &str, b: &str) -> String {
        let mut key = KeyBuilder::default();
        key.value(a).literal(":").value(b);
        key.finish().into()
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
    fn a_companion_names_its_entry() {
        for (prefix, key) in [
            ("", "user:1"),
            ("app:", "app:user:1"),
            ("", "{tenant}:user:1"),
            ("app:", "app:a}b"),
            ("app:", "app:{x"),
        ] {
            for suffix in ["#v", "#lock"] {
                let named = companion(prefix, key, suffix);
                assert_eq!(
                    companion_entry(prefix, &named, suffix),
                    Some(key),
                    "{named}"
                );
                assert_eq!(entry_of(prefix, &named), key);
            }
            assert_eq!(entry_of(prefix, key), key, "an entry is its own");
        }
        assert_eq!(companion_entry("app:", "app:user#v2", "#v"), None);
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
    fn prefixes_that_keep_companions_in_the_slot_are_told_apart() {
        for prefix in ["", "app:", "{app}:", "a}b:", "{t}{", "x}{y}:"] {
            assert!(prefix_keeps_slots(prefix), "{prefix:?}");
            for key in ["user:1", "a}b", "{x}y", "}{"] {
                let key = format!("{prefix}{key}");
                assert_eq!(slot(&companion(prefix, &key, "#v")), slot(&key), "{key:?}");
            }
        }
        for prefix in ["x}{:", "{", "{}:", "a{b"] {
            assert!(!prefix_keeps_slots(prefix), "{prefix:?}");
            let key = format!("{prefix}user:1");
            assert_ne!(slot(&companion(prefix, &key, "#v")), slot(&key), "{key:?}");
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
        assert_eq!(
            key.finish().as_str(),
            "app::Repo%3Cu8%2C%20%27:%27%3E(a%3A%3Ab)"
        );
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
        assert_eq!(key.finish().as_str(), "user:42");
    }

    #[test]
    fn long_keys_move_to_the_heap_unchanged() {
        for length in [INLINE - 1, INLINE, INLINE + 1, 3 * INLINE] {
            let value = "é".repeat(length / 6) + &"x".repeat(length % 6);
            let mut key = KeyBuilder::with_capacity(8);
            key.literal("k:").value(&value).literal(":").value(&7u8);
            let key = key.finish();
            let expected = format!(
                "k:{}:7",
                "%C3%A9".repeat(length / 6) + &"x".repeat(length % 6)
            );
            assert_eq!(key.as_str(), expected);
            assert_eq!(key.clone(), key);
            assert_eq!(String::from(key), expected);
        }
        assert_eq!(std::mem::size_of::<Key>(), 128);
        assert_eq!(INLINE, 103, "as the documentation of `Key` says");
        assert_eq!(Key::from("a:b").as_str(), "a:b");
    }
}

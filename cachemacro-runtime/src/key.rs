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

/// A key that lives beside `key` in the same Redis Cluster hash slot, so one script can touch both:
/// `user:1` gets `{user:1}#v`; a key that already has a hash tag keeps it and gets the suffix.
pub fn companion(key: &str, suffix: &str) -> String {
    let mut companion = String::with_capacity(key.len() + suffix.len() + 2);
    if has_hash_tag(key) {
        companion.push_str(key);
    } else {
        companion.push('{');
        companion.push_str(key);
        companion.push('}');
    }
    companion.push_str(suffix);
    companion
}

/// Whether Redis Cluster hashes only part of `key`: a `{` followed later by a `}` with at
/// least one character between them.
fn has_hash_tag(key: &str) -> bool {
    key.find('{')
        .and_then(|open| key[open + 1..].find('}'))
        .is_some_and(|length| length > 0)
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
    fn companions_share_the_hash_slot() {
        assert_eq!(companion("user:1", "#v"), "{user:1}#v");
        assert_eq!(companion("{tenant}:user:1", "#v"), "{tenant}:user:1#v");
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

//! Building cache keys from templates without collisions.
//!
//! A rendered value may only contain characters of [`is_plain`]; every other byte is written as
//! `%XX`. The macro requires, between two placeholders, at least one character that no rendered
//! value contains (neither plain nor `%`: a separator such as `:`), so a rendered key can be split
//! back into its values: `"<a>:<b>"` renders `("1:2", "3")` as `1%3A2:3` and `("1", "2:3")` as
//! `1:2%3A3`. Braces are never plain, so a value can never introduce a Redis Cluster hash tag.

use std::fmt::{self, Display, Write};

/// Whether `byte` may appear unescaped in a rendered value.
pub const fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
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
        let _ = write!(Escaper(&mut self.key), "{value}");
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

struct Escaper<'a>(&'a mut String);

impl Write for Escaper<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if text.bytes().all(is_plain) {
            self.0.push_str(text);
            return Ok(());
        }
        for byte in text.bytes() {
            if is_plain(byte) {
                self.0.push(byte as char);
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                self.0.push('%');
                self.0.push(HEX[usize::from(byte >> 4)] as char);
                self.0.push(HEX[usize::from(byte & 0xF)] as char);
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
    fn numbers_render_plain() {
        let mut key = KeyBuilder::with_capacity(8);
        key.literal("user:").value(&42u64);
        assert_eq!(key.finish(), "user:42");
    }
}

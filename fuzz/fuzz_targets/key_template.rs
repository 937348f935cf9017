//! Arbitrary text parsed as a `key`/`keys`/`tags` template, as the macro does with the string
//! literal a user writes: parsing may reject the text, never panic, and what it accepts must
//! describe the text exactly.
//!
//! Proc-macro crates export only macros, so the parser's source is compiled into this target.
#![no_main]

#[allow(
    dead_code,
    reason = "the macro also reads the span, which this target does not check"
)]
#[path = "../../cachemacro/src/template.rs"]
mod template;

use libfuzzer_sys::fuzz_target;
use proc_macro2::Span;
use syn::LitStr;

use crate::template::{Segment, Template};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let literal = LitStr::new(text, Span::call_site());
    for argument in ["key", "keys", "tags"] {
        match Template::parse(&literal, argument) {
            Ok(template) => check_accepted(text, &template),
            Err(error) => assert!(!error.to_string().is_empty(), "an error says why"),
        }
    }
});

/// Whether `byte` can end one value and start the next in a rendered key. The runtime writes a
/// value with letters, digits, `_`, `-`, `.` and `%XX` escapes only; a key splits back into its
/// values in one way only if each pair of placeholders has a character between them that no
/// value contains.
fn separates(byte: u8) -> bool {
    !(byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b'%'))
}

fn check_accepted(text: &str, template: &Template) {
    assert!(!text.is_empty(), "an empty template is rejected");

    let mut rendered = String::new();
    for segment in &template.segments {
        match segment {
            Segment::Literal(literal) => rendered.push_str(literal),
            Segment::Placeholder(placeholder) => rendered.push_str(&placeholder.to_string()),
        }
    }
    assert_eq!(rendered, text, "the segments spell the template back");

    let mut placeholders = 0;
    let mut separated = true;
    let mut previous_was_literal = false;
    for segment in &template.segments {
        match segment {
            Segment::Literal(literal) => {
                assert!(!literal.is_empty(), "no empty literal");
                assert!(!previous_was_literal, "adjacent literals are one literal");
                assert!(
                    !literal.contains(['<', '>']),
                    "brackets only in placeholders"
                );
                separated |= literal.bytes().any(separates);
                previous_was_literal = true;
            }
            Segment::Placeholder(placeholder) => {
                assert!(
                    separated,
                    "placeholders separated by no character outside values: {text:?}"
                );
                assert!(!placeholder.root.is_empty() && placeholder.root != "_");
                for name in std::iter::once(&placeholder.root).chain(&placeholder.fields) {
                    assert!(!name.is_empty() && !name.contains(['.', '<', '>']));
                }
                placeholders += 1;
                separated = false;
                previous_was_literal = false;
            }
        }
    }
    assert_eq!(template.placeholders().count(), placeholders);
}

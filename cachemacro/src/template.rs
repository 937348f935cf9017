//! Templates: the `key = "user:<id>"`, `keys = [..]` and `tags = [..]` arguments.
//!
//! A template is literal text with `<name>` placeholders. A placeholder names a parameter and may
//! reach into its fields: `<user.id>`, `<self.tenant>`, `<pair.0>`. Whether the names exist is
//! checked later against the signature (`valid.rs`); this module only knows the syntax.

use std::fmt::{self, Display};

use proc_macro2::Span;
use syn::LitStr;

/// A parsed template and the span of the string literal it came from.
pub(crate) struct Template {
    pub span: Span,
    pub segments: Vec<Segment>,
}

/// One piece of a template, in order.
#[derive(Debug, PartialEq)]
pub(crate) enum Segment {
    /// Text copied into the key as written.
    Literal(String),
    /// A value rendered with `Display` and escaped by the runtime.
    Placeholder(Placeholder),
}

/// `<root.field.field>`: a parameter and the path of fields to read from it.
#[derive(Debug, PartialEq)]
pub(crate) struct Placeholder {
    pub root: String,
    pub fields: Vec<String>,
}

impl Display for Placeholder {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "<{}", self.root)?;
        for field in &self.fields {
            write!(formatter, ".{field}")?;
        }
        formatter.write_str(">")
    }
}

impl Template {
    /// Parses the template in `literal`, given as the argument `argument` (`key`, `keys` or
    /// `tags`, which error messages quote); an error points at the whole literal.
    pub(crate) fn parse(literal: &LitStr, argument: &str) -> syn::Result<Self> {
        let segments = parse_segments(&literal.value(), argument)
            .map_err(|message| syn::Error::new(literal.span(), message))?;
        Ok(Template {
            span: literal.span(),
            segments,
        })
    }

    /// The placeholders, in order.
    pub(crate) fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Placeholder(placeholder) => Some(placeholder),
            Segment::Literal(_) => None,
        })
    }
}

/// Whether `byte` can appear in a rendered value: the runtime writes letters, digits, `_`, `-`
/// and `.` as they are, and every other byte as `%XX`, so `%` appears too.
///
/// This must agree with `cachemacro_runtime::key::is_plain`: two placeholders need a character
/// between them that no rendered value can contain, so a key splits back into its values in
/// exactly one way.
fn can_occur_in_value(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b'%')
}

fn parse_segments(template: &str, argument: &str) -> Result<Vec<Segment>, String> {
    let noun = if argument == "tags" { "tag" } else { "key" };
    if template.is_empty() {
        let example = if argument == "key" {
            "key = \"user:<id>\"".to_owned()
        } else {
            format!("{argument} = [\"user:<id>\"]")
        };
        return Err(format!(
            "the {noun} template is empty; write for example `{example}`"
        ));
    }
    let mut segments = Vec::new();
    // The placeholder before the current position, and whether a separator followed it.
    let mut previous: Option<String> = None;
    let mut separated = false;
    let mut rest = template;
    loop {
        let literal_end = rest.find(['<', '>']).unwrap_or(rest.len());
        let (literal, tail) = rest.split_at(literal_end);
        if !literal.is_empty() {
            separated |= !literal.bytes().all(can_occur_in_value);
            segments.push(Segment::Literal(literal.to_owned()));
        }
        if tail.is_empty() {
            return Ok(segments);
        }
        if tail.starts_with('>') {
            return Err(format!(
                "unmatched `>` in the {noun} template; placeholders are written `<name>`"
            ));
        }
        let inner = &tail[1..];
        let inner_end = match inner.find(['<', '>']) {
            Some(end) if inner[end..].starts_with('>') => end,
            _ => {
                let unclosed = &tail[..inner.find('<').map_or(tail.len(), |end| end + 1)];
                return Err(format!(
                    "unclosed placeholder `{unclosed}` in the {noun} template; close it with `>`"
                ));
            }
        };
        let placeholder = parse_placeholder(&inner[..inner_end], noun)?;
        let text = placeholder.to_string();
        if let Some(previous) = &previous {
            if !separated {
                return Err(format!(
                    "placeholders `{previous}` and `{text}` must be separated by a character \
                     such as `:`; letters, digits, `_`, `-`, `.` and `%` can occur in values, so \
                     they do not separate them"
                ));
            }
        }
        previous = Some(text);
        separated = false;
        segments.push(Segment::Placeholder(placeholder));
        rest = &inner[inner_end + 1..];
    }
}

fn parse_placeholder(path: &str, noun: &str) -> Result<Placeholder, String> {
    if path.is_empty() {
        return Err(format!(
            "empty placeholder `<>` in the {noun} template; name a parameter, e.g. `<id>`"
        ));
    }
    let mut parts = path.split('.');
    let root = parts.next().unwrap_or_default();
    if !is_identifier(root) {
        return Err(format!(
            "invalid placeholder `<{path}>`: `{root}` is not a parameter name"
        ));
    }
    let fields = parts
        .map(|field| {
            if is_identifier(field) || is_tuple_index(field) {
                Ok(field.to_owned())
            } else {
                Err(format!(
                    "invalid placeholder `<{path}>`: `{field}` is not a field name"
                ))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Placeholder {
        root: root.to_owned(),
        fields,
    })
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    let starts_well = chars
        .next()
        .is_some_and(|first| first == '_' || first.is_alphabetic());
    starts_well && text != "_" && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn is_tuple_index(text: &str) -> bool {
    text.parse::<u32>()
        .is_ok_and(|index| index.to_string() == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(text: &str) -> Segment {
        Segment::Literal(text.to_owned())
    }

    fn placeholder(root: &str, fields: &[&str]) -> Segment {
        Segment::Placeholder(Placeholder {
            root: root.to_owned(),
            fields: fields.iter().map(|field| (*field).to_owned()).collect(),
        })
    }

    #[test]
    fn literal_only() {
        assert_eq!(
            parse_segments("users:all", "key"),
            Ok(vec![literal("users:all")])
        );
    }

    #[test]
    fn placeholders_and_literals() {
        assert_eq!(
            parse_segments("user:<id>:<name>", "key"),
            Ok(vec![
                literal("user:"),
                placeholder("id", &[]),
                literal(":"),
                placeholder("name", &[]),
            ])
        );
    }

    #[test]
    fn field_paths() {
        assert_eq!(
            parse_segments("<self.tenant>/<query.page.0>", "key"),
            Ok(vec![
                placeholder("self", &["tenant"]),
                literal("/"),
                placeholder("query", &["page", "0"]),
            ])
        );
    }

    #[test]
    fn placeholder_may_start_or_end_the_template() {
        assert_eq!(
            parse_segments("<id>", "key"),
            Ok(vec![placeholder("id", &[])])
        );
    }

    #[test]
    fn separator_needs_one_character_that_is_not_plain() {
        let error = parse_segments("<a><b>", "key").unwrap_err();
        assert!(
            error.starts_with(
                "placeholders `<a>` and `<b>` must be separated by a character such as `:`"
            ),
            "{error}"
        );
        assert!(parse_segments("<a>x-y.z_1<b>", "key").is_err());
        // `%` starts every escape: ("%", "3A") and ("", "25:") would both give `%25%3A`.
        assert!(parse_segments("<a>%<b>", "key").is_err());
        assert!(parse_segments("<a>x/y<b>", "key").is_ok());
        assert!(parse_segments("<a> <b>", "key").is_ok());
    }

    #[test]
    fn separation_is_checked_between_each_pair() {
        assert!(parse_segments("<a>:<b><c>", "key").is_err());
        assert!(parse_segments("<a>:<b>:<c>", "key").is_ok());
    }

    #[test]
    fn unclosed_placeholder() {
        let error = parse_segments("user:<id", "key").unwrap_err();
        assert!(error.starts_with("unclosed placeholder `<id`"), "{error}");
        let error = parse_segments("<a<b>", "key").unwrap_err();
        assert!(error.starts_with("unclosed placeholder `<a`"), "{error}");
    }

    #[test]
    fn stray_closing_bracket() {
        assert!(parse_segments("user>:<id>", "key")
            .unwrap_err()
            .starts_with("unmatched `>`"));
        assert!(parse_segments("<id>>", "key")
            .unwrap_err()
            .starts_with("unmatched `>`"));
    }

    #[test]
    fn empty_placeholder_and_template() {
        assert!(parse_segments("a:<>", "key")
            .unwrap_err()
            .starts_with("empty placeholder"));
        assert!(parse_segments("", "key")
            .unwrap_err()
            .starts_with("the key template is empty"));
    }

    #[test]
    fn invalid_names() {
        for template in [
            "<1a>", "<a b>", "<_>", "<a.>", "<.a>", "<a..b>", "<a.01>", "<a.b-c>",
        ] {
            assert!(
                parse_segments(template, "key")
                    .unwrap_err()
                    .starts_with("invalid placeholder"),
                "{template}"
            );
        }
    }
}

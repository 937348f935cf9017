//! Parsing the arguments of `#[cached(...)]` into [`Args`].
//!
//! Every argument is written `name = value`. The accepted names live in one table,
//! [`ARGUMENTS`], which drives dispatch, the duplicate check and the "expected one of" list.
//! Adding an argument takes a field in [`Args`], a keyword in [`kw`], a parse function and a row
//! in the table.
//!
//! A malformed value (`ttl = 0`, an invalid template) is recorded and parsing goes on, so every
//! such mistake is reported at once; broken syntax (a missing `=`) stops the parse.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitBool, LitStr, Path, Token, UnOp};

use crate::errors::Errors;
use crate::template::Template;

mod kw {
    syn::custom_keyword!(ttl);
    syn::custom_keyword!(key);
    syn::custom_keyword!(cache);
    syn::custom_keyword!(negative_ttl);
    syn::custom_keyword!(cache_none);
}

/// One argument's value and the span of its name, where cross-argument errors point.
pub(crate) struct Arg<T> {
    pub name_span: Span,
    pub value: T,
}

/// The arguments given to one `#[cached(...)]`; `None` for each one left out.
#[derive(Default)]
pub(crate) struct Args {
    /// `ttl`, in seconds.
    pub ttl: Option<Arg<u64>>,
    /// `key`: the parsed template.
    pub key: Option<Arg<Template>>,
    /// `cache`: an expression evaluating to something that derefs to the runtime's `Cache`.
    pub cache: Option<Arg<Expr>>,
    /// `negative_ttl`, in seconds.
    pub negative_ttl: Option<Arg<u64>>,
    /// `cache_none`: whether `None` results are stored.
    pub cache_none: Option<Arg<bool>>,
    /// `crate`: the path of the runtime crate.
    pub krate: Option<Arg<Path>>,
}

impl Args {
    /// Every identifier in the `cache` expression: parameters it names are the cache, not part
    /// of what is cached, so they stay out of the default key.
    pub(crate) fn cache_mentions(&self) -> Vec<Ident> {
        fn collect(tokens: TokenStream, idents: &mut Vec<Ident>) {
            for token in tokens {
                match token {
                    TokenTree::Ident(ident) => idents.push(ident),
                    TokenTree::Group(group) => collect(group.stream(), idents),
                    TokenTree::Punct(_) | TokenTree::Literal(_) => {}
                }
            }
        }
        let mut idents = Vec::new();
        if let Some(cache) = &self.cache {
            collect(cache.value.to_token_stream(), &mut idents);
        }
        idents
    }
}

/// Parses one argument, from its name to the end of its value, into `args`.
type ParseArgument = fn(&mut Args, ParseStream, &mut Errors) -> syn::Result<()>;

/// Every argument, in the order error messages list them.
const ARGUMENTS: &[(&str, ParseArgument)] = &[
    ("ttl", parse_ttl),
    ("key", parse_key),
    ("cache", parse_cache),
    ("negative_ttl", parse_negative_ttl),
    ("cache_none", parse_cache_none),
    ("crate", parse_crate),
];

/// Parses `tokens`, the inside of `#[cached(...)]`, recording every error in `errors`.
pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
    let mut args = Args::default();
    let parser = |input: ParseStream| parse_arguments(input, &mut args, errors);
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    args
}

fn parse_arguments(input: ParseStream, args: &mut Args, errors: &mut Errors) -> syn::Result<()> {
    let mut seen: Vec<&str> = Vec::new();
    while !input.is_empty() {
        let name = input.fork().call(Ident::parse_any).map_err(|_| {
            syn::Error::new(input.span(), expected_arguments("expected an argument"))
        })?;
        match ARGUMENTS.iter().find(|(known, _)| name == known) {
            Some((known, _)) if seen.contains(known) => {
                errors.push(syn::Error::new(
                    name.span(),
                    format!("duplicate `{known}` argument"),
                ));
                skip_argument(input)?;
            }
            Some((known, parse_argument)) => {
                seen.push(known);
                parse_argument(args, input, errors)?;
            }
            None => {
                let message = format!("unknown argument `{name}`");
                errors.push(syn::Error::new(name.span(), expected_arguments(&message)));
                skip_argument(input)?;
            }
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

fn expected_arguments(message: &str) -> String {
    let names: Vec<&str> = ARGUMENTS.iter().map(|(name, _)| *name).collect();
    format!("{message}, expected one of: {}", names.join(", "))
}

/// Moves past an argument that is not stored, up to the comma that ends it.
fn skip_argument(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

fn parse_ttl(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = input.parse::<kw::ttl>()?.span;
    input.parse::<Token![=]>()?;
    args.ttl = seconds(&input.parse()?, "ttl", name_span, errors);
    Ok(())
}

fn parse_key(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = input.parse::<kw::key>()?.span;
    input.parse::<Token![=]>()?;
    match Template::parse(&input.parse()?) {
        Ok(value) => args.key = Some(Arg { name_span, value }),
        Err(error) => errors.push(error),
    }
    Ok(())
}

fn parse_cache(args: &mut Args, input: ParseStream, _: &mut Errors) -> syn::Result<()> {
    let name_span = input.parse::<kw::cache>()?.span;
    input.parse::<Token![=]>()?;
    let value = input.parse()?;
    args.cache = Some(Arg { name_span, value });
    Ok(())
}

fn parse_negative_ttl(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = input.parse::<kw::negative_ttl>()?.span;
    input.parse::<Token![=]>()?;
    args.negative_ttl = seconds(&input.parse()?, "negative_ttl", name_span, errors);
    Ok(())
}

fn parse_cache_none(args: &mut Args, input: ParseStream, _: &mut Errors) -> syn::Result<()> {
    let name_span = input.parse::<kw::cache_none>()?.span;
    input.parse::<Token![=]>()?;
    let value = input.parse::<LitBool>()?.value;
    args.cache_none = Some(Arg { name_span, value });
    Ok(())
}

fn parse_crate(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = input.parse::<Token![crate]>()?.span;
    input.parse::<Token![=]>()?;
    match input.parse::<LitStr>()?.parse::<Path>() {
        Ok(value) => args.krate = Some(Arg { name_span, value }),
        Err(error) => errors.push(error),
    }
    Ok(())
}

/// Reads a duration argument: whole seconds (`3600`) or a duration string (`"1h30m"`).
///
/// The expression is parsed whole, rather than as a literal, so that `-5` or `5 * 60` are
/// reported as one span with a message about durations.
fn seconds(value: &Expr, name: &str, name_span: Span, errors: &mut Errors) -> Option<Arg<u64>> {
    let secs = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) if !int.base10_digits().starts_with('-') => int
            .base10_parse::<u64>()
            .map_err(|_| format!("`{name}` is too large")),
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => parse_duration(&text.value()).map_err(|reason| {
            format!("invalid duration {:?} for `{name}`: {reason}", text.value())
        }),
        Expr::Lit(ExprLit {
            lit: Lit::Int(_), ..
        })
        | Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => Err(format!("`{name}` cannot be negative")),
        _ => Err(format!(
            "`{name}` takes whole seconds, like `{name} = 3600`, or a duration string, like \
             `{name} = \"1h\"`"
        )),
    };
    match secs {
        Ok(0) => errors.push(syn::Error::new_spanned(
            value,
            format!("`{name}` must be at least one second"),
        )),
        Ok(secs) => {
            return Some(Arg {
                name_span,
                value: secs,
            })
        }
        Err(message) => errors.push(syn::Error::new_spanned(value, message)),
    }
    None
}

/// Parses a duration string such as `"90s"`, `"5m"` or `"1h30m"` into seconds.
///
/// Each unit (`d`, `h`, `m`, `s`) follows a whole number, appears at most once, and the units
/// come largest first, so every duration has one spelling.
fn parse_duration(text: &str) -> Result<u64, String> {
    const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
    const EXAMPLE: &str = "write a number and a unit for each of d, h, m, s, largest first, \
                           like \"1h30m\"";
    if text.is_empty() {
        return Err(format!("the duration is empty; {EXAMPLE}"));
    }
    let mut total: u64 = 0;
    // Units still allowed: those after the last one used.
    let mut allowed = &UNITS[..];
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number at {rest:?}; {EXAMPLE}"));
        }
        let (number, tail) = rest.split_at(digits);
        let Some(unit) = tail.chars().next() else {
            return Err(format!("`{number}` has no unit; {EXAMPLE}"));
        };
        let Some(position) = allowed.iter().position(|(known, _)| *known == unit) else {
            return Err(if UNITS.iter().any(|(known, _)| *known == unit) {
                format!("unit `{unit}` is repeated or out of order; {EXAMPLE}")
            } else {
                format!("unknown unit `{unit}`; {EXAMPLE}")
            });
        };
        let seconds_per_unit = allowed[position].1;
        allowed = &allowed[position + 1..];
        total = number
            .parse::<u64>()
            .ok()
            .and_then(|count| count.checked_mul(seconds_per_unit))
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(|| "the duration is too large".to_owned())?;
        rest = &tail[unit.len_utf8()..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn single_units() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("1h"), Ok(3_600));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("0s"), Ok(0));
    }

    #[test]
    fn combined_units_largest_first() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400));
        assert_eq!(parse_duration("1d2h3m4s"), Ok(93_784));
        assert_eq!(parse_duration("1d4s"), Ok(86_404));
    }

    #[test]
    fn repeated_or_unordered_units() {
        assert!(parse_duration("30m1h")
            .unwrap_err()
            .starts_with("unit `h` is repeated"));
        assert!(parse_duration("1m1m")
            .unwrap_err()
            .starts_with("unit `m` is repeated"));
    }

    #[test]
    fn malformed_durations() {
        assert!(parse_duration("")
            .unwrap_err()
            .starts_with("the duration is empty"));
        assert!(parse_duration("90")
            .unwrap_err()
            .starts_with("`90` has no unit"));
        assert!(parse_duration("h")
            .unwrap_err()
            .starts_with("expected a number"));
        assert!(parse_duration("5x")
            .unwrap_err()
            .starts_with("unknown unit `x`"));
        assert!(parse_duration("1h 30m")
            .unwrap_err()
            .starts_with("expected a number at \" 30m\""));
        assert!(parse_duration("-5s")
            .unwrap_err()
            .starts_with("expected a number"));
        assert!(parse_duration("1.5h")
            .unwrap_err()
            .starts_with("unknown unit `.`"));
    }

    #[test]
    fn overflow() {
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err("the duration is too large".to_owned())
        );
        assert_eq!(
            parse_duration("213503982334602d"),
            Err("the duration is too large".to_owned())
        );
    }

    fn parse_ok(tokens: TokenStream) -> Args {
        let mut errors = Errors::default();
        let args = parse(tokens, &mut errors);
        if let Err(error) = errors.finish() {
            panic!("unexpected error: {error}");
        }
        args
    }

    fn error_messages(tokens: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        parse(tokens, &mut errors);
        errors.finish().map_or_else(
            |error| error.into_iter().map(|e| e.to_string()).collect(),
            |()| Vec::new(),
        )
    }

    #[test]
    fn every_argument() {
        let args = parse_ok(quote!(
            ttl = "1h",
            key = "user:<id>",
            cache = self.cache,
            negative_ttl = 30,
            cache_none = true,
            crate = "reexport::runtime"
        ));
        assert_eq!(args.ttl.map(|arg| arg.value), Some(3_600));
        assert_eq!(args.key.map(|arg| arg.value.segments.len()), Some(2));
        assert!(args.cache.is_some());
        assert_eq!(args.negative_ttl.map(|arg| arg.value), Some(30));
        assert_eq!(args.cache_none.map(|arg| arg.value), Some(true));
        assert_eq!(args.krate.map(|arg| arg.value.segments.len()), Some(2));
    }

    #[test]
    fn empty_and_trailing_comma() {
        assert!(parse_ok(quote!()).ttl.is_none());
        assert_eq!(parse_ok(quote!(ttl = 5,)).ttl.map(|arg| arg.value), Some(5));
    }

    #[test]
    fn all_errors_are_collected() {
        assert_eq!(
            error_messages(quote!(
                tll = 5,
                ttl = 0,
                ttl = 3,
                negative_ttl = -5,
                key = "<a><b>"
            )),
            [
                "unknown argument `tll`, expected one of: ttl, key, cache, negative_ttl, \
                 cache_none, crate",
                "`ttl` must be at least one second",
                "duplicate `ttl` argument",
                "`negative_ttl` cannot be negative",
                "placeholders `<a>` and `<b>` must be separated by a character such as `:`; \
                 letters, digits, `_`, `-` and `.` can occur in values, so they do not separate \
                 them",
            ]
        );
    }

    #[test]
    fn ttl_values() {
        assert_eq!(
            parse_ok(quote!(ttl = 60u64)).ttl.map(|arg| arg.value),
            Some(60)
        );
        assert_eq!(
            error_messages(quote!(ttl = 1.5)),
            [
                "`ttl` takes whole seconds, like `ttl = 3600`, or a duration string, like \
              `ttl = \"1h\"`"
            ]
        );
        assert_eq!(
            error_messages(quote!(ttl = "0s")),
            ["`ttl` must be at least one second"]
        );
        assert_eq!(
            error_messages(quote!(ttl = "1x")),
            [
                "invalid duration \"1x\" for `ttl`: unknown unit `x`; write a number and a unit \
              for each of d, h, m, s, largest first, like \"1h30m\""
            ]
        );
        assert_eq!(
            error_messages(quote!(ttl = SECONDS)),
            [
                "`ttl` takes whole seconds, like `ttl = 3600`, or a duration string, like \
              `ttl = \"1h\"`"
            ]
        );
    }

    #[test]
    fn syntax_errors_stop_the_parse() {
        assert_eq!(error_messages(quote!(ttl 5)), ["expected `=`"]);
        assert_eq!(
            error_messages(quote!("x")),
            [
                "expected an argument, expected one of: ttl, key, cache, negative_ttl, \
              cache_none, crate"
            ]
        );
    }
}

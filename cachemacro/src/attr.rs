//! Parsing the arguments of `#[cached(...)]`, `#[cache_put(...)]` and
//! `#[cache_invalidate(...)]` into [`Args`].
//!
//! Every argument is written `name = value`. The accepted names live in one table,
//! [`ARGUMENTS`], which drives dispatch, the duplicate check and the "expected one of" list, and
//! says which attributes accept each name. Adding an argument takes a field in [`Args`], a
//! keyword in [`kw`], a parse function and a row in the table.
//!
//! A malformed value (`ttl = 0`, an invalid template) is recorded and parsing goes on, so every
//! such mistake is reported at once; broken syntax (a missing `=`) stops the parse.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitBool, LitStr, Path, Token, UnOp};

use crate::errors::Errors;
use crate::template::Template;

mod kw {
    syn::custom_keyword!(ttl);
    syn::custom_keyword!(key);
    syn::custom_keyword!(keys);
    syn::custom_keyword!(tags);
    syn::custom_keyword!(cache);
    syn::custom_keyword!(negative_ttl);
    syn::custom_keyword!(cache_none);
    syn::custom_keyword!(lock);
    syn::custom_keyword!(lock_timeout);
    syn::custom_keyword!(early_refresh);
    syn::custom_keyword!(beta);
    syn::custom_keyword!(stale);
    syn::custom_keyword!(sliding);
    syn::custom_keyword!(ttl_profile);
    syn::custom_keyword!(version);
    syn::custom_keyword!(companions);
    syn::custom_keyword!(detach);
    syn::custom_keyword!(on_cache_error);
    syn::custom_keyword!(name);
    syn::custom_keyword!(unless);
    syn::custom_keyword!(condition);
    syn::custom_keyword!(codec);
    syn::custom_keyword!(compress);
    syn::custom_keyword!(compress_above);
}

/// The attribute whose arguments are parsed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Macro {
    /// `#[cached]`: cache-aside.
    Cached,
    /// `#[cache_put]`: write-through.
    CachePut,
    /// `#[cache_invalidate]`: removal after a write.
    CacheInvalidate,
}

impl Macro {
    /// How messages name the attribute: `` `#[cached]` ``.
    pub(crate) fn display(self) -> &'static str {
        match self {
            Macro::Cached => "`#[cached]`",
            Macro::CachePut => "`#[cache_put]`",
            Macro::CacheInvalidate => "`#[cache_invalidate]`",
        }
    }
}

/// One argument's value and the span of its name, where cross-argument errors point.
pub(crate) struct Arg<T> {
    pub name_span: Span,
    pub value: T,
}

/// The arguments given to one attribute; `None` for each one left out.
#[derive(Default)]
pub(crate) struct Args {
    /// `ttl`, in milliseconds.
    pub ttl: Option<Arg<u64>>,
    /// `key`: the parsed template.
    pub key: Option<Arg<Template>>,
    /// `key = <expression>`: an expression whose string (`AsRef<str>`) is the key.
    pub key_expr: Option<Arg<Expr>>,
    /// `keys`: the parsed templates of the keys `#[cache_invalidate]` removes.
    pub keys: Option<Arg<Vec<Template>>>,
    /// `tags`: the parsed templates of the tags an entry carries, or that are invalidated.
    pub tags: Option<Arg<Vec<Template>>>,
    /// `cache`: an expression evaluating to something that derefs to the runtime's `Cache`.
    pub cache: Option<Arg<Expr>>,
    /// `negative_ttl`, in milliseconds.
    pub negative_ttl: Option<Arg<u64>>,
    /// `cache_none`: whether `None` results are stored.
    pub cache_none: Option<Arg<bool>>,
    /// `lock`: whether a miss takes the distributed fill lock.
    pub lock: Option<Arg<bool>>,
    /// `lock_timeout`, in milliseconds.
    pub lock_timeout: Option<Arg<u64>>,
    /// `early_refresh`: whether hits may refresh an entry before it expires.
    pub early_refresh: Option<Arg<bool>>,
    /// `beta`: how early an early refresh tends to come; positive and finite.
    pub beta: Option<Arg<f64>>,
    /// `stale`: how long after its ttl an entry is still served, in milliseconds.
    pub stale: Option<Arg<u64>>,
    /// `sliding`: whether each hit restarts the entry's ttl.
    pub sliding: Option<Arg<bool>>,
    /// `ttl_profile`: the name of a ttl configured on the cache; `[a-z0-9_]+`.
    pub ttl_profile: Option<Arg<String>>,
    /// `version`: appended to the key as `@v<version>`; greater than zero.
    pub version: Option<Arg<u64>>,
    /// `companions`: whether `invalidate_<name>` and `refresh_<name>` are defined.
    pub companions: Option<Arg<bool>>,
    /// `detach`: whether refreshes may run in a background task.
    pub detach: Option<Arg<bool>>,
    /// `on_cache_error`: what a failed cache operation does to the call.
    pub on_cache_error: Option<Arg<OnCacheError>>,
    /// `name`: the function's stable identity, for its statistics and metrics and its default
    /// key; `[A-Za-z0-9_.:/-]+`.
    pub name: Option<Arg<LitStr>>,
    /// `unless`: a closure or path given a reference to the value about to be stored; `true`
    /// keeps it out of the cache.
    pub unless: Option<Arg<Expr>>,
    /// `condition`: a `bool` expression over the arguments; `false` bypasses the cache.
    pub condition: Option<Arg<Expr>>,
    /// `codec`: how values are serialized; one of [`CODECS`], the literal kept for its span.
    pub codec: Option<Arg<LitStr>>,
    /// `compress`: how large values are compressed; one of [`COMPRESSIONS`].
    pub compress: Option<Arg<LitStr>>,
    /// `compress_above`: the smallest serialized value that is compressed, in bytes.
    pub compress_above: Option<Arg<u64>>,
    /// `crate`: the path of the runtime crate.
    pub krate: Option<Arg<Path>>,
    /// The names of the arguments given, in order, for errors about the later of two.
    pub given: Vec<&'static str>,
}

impl Args {
    /// Every identifier in the `cache` expression: parameters it names are the cache, not part
    /// of what is cached, so they stay out of the default key.
    pub(crate) fn cache_mentions(&self) -> Vec<Ident> {
        self.cache
            .as_ref()
            .map_or_else(Vec::new, |cache| mentions(&cache.value))
    }

    /// Every identifier in a `key` expression: the parameters it may read.
    pub(crate) fn key_expr_mentions(&self) -> Option<Vec<Ident>> {
        self.key_expr.as_ref().map(|key| mentions(&key.value))
    }
}

/// Every identifier in `expr`, at any depth.
fn mentions(expr: &Expr) -> Vec<Ident> {
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
    collect(expr.to_token_stream(), &mut idents);
    idents
}

impl Args {
    /// Whether a hit can ever refresh its entry: early refresh is on, or a stale window is set.
    /// A sliding entry has no expiry to refresh ahead of.
    pub(crate) fn refreshes(&self) -> bool {
        if self.sliding.as_ref().is_some_and(|arg| arg.value) {
            return false;
        }
        self.early_refresh.as_ref().is_none_or(|arg| arg.value) || self.stale.is_some()
    }

    /// Whether refreshes may leave the caller's task when the arguments allow: unless
    /// `detach = false`.
    pub(crate) fn detaches(&self) -> bool {
        self.detach.as_ref().is_none_or(|arg| arg.value)
    }

    /// Whether `invalidate_<name>` and `refresh_<name>` are wanted: unless `companions = false`.
    pub(crate) fn companions(&self) -> bool {
        self.companions.as_ref().is_none_or(|arg| arg.value)
    }

    /// The span of the `"fail"` literal when `on_cache_error = "fail"` is given.
    pub(crate) fn fails_on_cache_error(&self) -> Option<Span> {
        self.on_cache_error
            .as_ref()
            .filter(|arg| arg.value.fail)
            .map(|arg| arg.value.span)
    }

    /// Whether argument `later` was given after argument `earlier`.
    pub(crate) fn given_after(&self, later: &str, earlier: &str) -> bool {
        let position = |name: &str| self.given.iter().position(|given| *given == name);
        position(later) > position(earlier)
    }
}

/// The value of `on_cache_error`, and the span of its literal, where a return type that cannot
/// carry the cache's error is reported.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OnCacheError {
    /// `"fail"`: a failed cache operation is returned as the function's error.
    pub fail: bool,
    /// The span of the string literal.
    pub span: Span,
}

/// Parses one argument, from its name to the end of its value, into `args`.
type ParseArgument = fn(&mut Args, ParseStream, &mut Errors) -> syn::Result<()>;

use Macro::{CacheInvalidate, CachePut, Cached};

/// Every argument, in the order error messages list them, and the attributes that accept it.
const ARGUMENTS: &[(&str, ParseArgument, &[Macro])] = &[
    ("ttl", parse_ttl, &[Cached, CachePut]),
    ("key", parse_key, &[Cached, CachePut]),
    ("keys", parse_keys, &[CacheInvalidate]),
    ("tags", parse_tags, &[Cached, CachePut, CacheInvalidate]),
    ("cache", parse_cache, &[Cached, CachePut, CacheInvalidate]),
    ("negative_ttl", parse_negative_ttl, &[Cached]),
    ("cache_none", parse_cache_none, &[Cached]),
    ("lock", parse_lock, &[Cached]),
    ("lock_timeout", parse_lock_timeout, &[Cached]),
    ("early_refresh", parse_early_refresh, &[Cached]),
    ("beta", parse_beta, &[Cached]),
    ("stale", parse_stale, &[Cached]),
    ("sliding", parse_sliding, &[Cached]),
    ("ttl_profile", parse_ttl_profile, &[Cached, CachePut]),
    ("version", parse_version, &[Cached, CachePut]),
    ("companions", parse_companions, &[Cached]),
    ("detach", parse_detach, &[Cached]),
    (
        "on_cache_error",
        parse_on_cache_error,
        &[Cached, CachePut, CacheInvalidate],
    ),
    ("name", parse_name, &[Cached, CachePut]),
    ("unless", parse_unless, &[Cached]),
    ("condition", parse_condition, &[Cached]),
    ("codec", parse_codec, &[Cached, CachePut]),
    ("compress", parse_compress, &[Cached, CachePut]),
    ("compress_above", parse_compress_above, &[Cached, CachePut]),
    ("crate", parse_crate, &[Cached, CachePut, CacheInvalidate]),
];

/// The values `codec` takes.
pub(crate) const CODECS: &[&str] = &["json", "msgpack", "postcard"];

/// The values `compress` takes.
pub(crate) const COMPRESSIONS: &[&str] = &["lz4", "zstd", "none"];

/// The arguments `attribute` accepts, in table order.
fn arguments_of(
    attribute: Macro,
) -> impl Iterator<Item = &'static (&'static str, ParseArgument, &'static [Macro])> {
    ARGUMENTS
        .iter()
        .filter(move |(_, _, accepted_by)| accepted_by.contains(&attribute))
}

/// Parses `tokens`, the inside of `#[attribute(...)]`, recording every error in `errors`.
pub(crate) fn parse(tokens: TokenStream, attribute: Macro, errors: &mut Errors) -> Args {
    let mut args = Args::default();
    let parser = |input: ParseStream| parse_arguments(input, attribute, &mut args, errors);
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    args
}

fn parse_arguments(
    input: ParseStream,
    attribute: Macro,
    args: &mut Args,
    errors: &mut Errors,
) -> syn::Result<()> {
    while !input.is_empty() {
        let name = input.fork().call(Ident::parse_any).map_err(|_| {
            syn::Error::new(
                input.span(),
                expected_arguments(attribute, "expected an argument"),
            )
        })?;
        match arguments_of(attribute).find(|(known, _, _)| name == known) {
            Some((known, _, _)) if args.given.contains(known) => {
                errors.push(syn::Error::new(
                    name.span(),
                    format!("duplicate `{known}` argument"),
                ));
                skip_argument(input)?;
            }
            Some((known, parse_argument, _)) => {
                args.given.push(known);
                parse_argument(args, input, errors)?;
            }
            None => {
                errors.push(syn::Error::new(
                    name.span(),
                    unknown_argument(attribute, &name.to_string()),
                ));
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

fn expected_arguments(attribute: Macro, message: &str) -> String {
    format!("{message}, expected one of: {}", accepted(attribute))
}

/// The arguments `attribute` takes, as error messages list them: `ttl, key, tags, ..`.
fn accepted(attribute: Macro) -> String {
    let names: Vec<&str> = arguments_of(attribute).map(|(name, _, _)| *name).collect();
    names.join(", ")
}

/// The message for an argument `name` that `attribute` does not take: the argument it most
/// likely meant when one is a near miss (`tll` for `ttl`), else the list of those it takes; and
/// when `name` belongs to other attributes, which ones.
fn unknown_argument(attribute: Macro, name: &str) -> String {
    let owners: Vec<&str> = ARGUMENTS
        .iter()
        .find(|(known, _, _)| *known == name)
        .map(|(_, _, accepted_by)| accepted_by.iter().map(|owner| owner.display()).collect())
        .unwrap_or_default();
    let message = match owners.as_slice() {
        [] => format!("unknown argument `{name}`"),
        [owner] => format!(
            "`{name}` is an argument of {owner}, not of {}",
            attribute.display()
        ),
        [owners @ .., last] => format!(
            "`{name}` is an argument of {} and {last}, not of {}",
            owners.join(", "),
            attribute.display()
        ),
    };
    // After "unknown argument `x`" a comma; after a sentence naming other attributes, which
    // has commas of its own, a semicolon.
    let separator = if owners.is_empty() { "," } else { ";" };
    let names: Vec<&str> = arguments_of(attribute)
        .map(|(known, _, _)| *known)
        .collect();
    match closest(name, &names) {
        Some(known) => format!("{message}{separator} did you mean `{known}`?"),
        None => format!(
            "{message}{separator} expected one of: {}",
            accepted(attribute)
        ),
    }
}

/// The candidate `name` is most likely a misspelling of: the same but for case, or else the
/// nearest within an edit distance of a third of its length (at least one), the first of equals.
fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lowercase = name.to_ascii_lowercase();
    if let Some(same) = candidates.iter().find(|known| **known == lowercase) {
        return Some(same);
    }
    let limit = (name.len() / 3).max(1);
    candidates
        .iter()
        .map(|known| (edit_distance(&lowercase, known), *known))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// The number of single-byte insertions, deletions, substitutions and swaps of adjacent bytes
/// that turn `a` into `b` (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // Three rows of the table: two rows back (for swaps), the previous one, the current one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut distance = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                distance = distance.min(before[j - 2] + 1);
            }
            current[j] = distance;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Moves past an argument that is not stored, up to the comma that ends it.
fn skip_argument(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// Parses an argument's name, `K`, and the `=` after it; returns the name's span.
fn argument_name<K: Parse + Spanned>(input: ParseStream) -> syn::Result<Span> {
    let name = input.parse::<K>()?;
    input.parse::<Token![=]>()?;
    Ok(name.span())
}

fn parse_ttl(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::ttl>(input)?;
    args.ttl = milliseconds(&input.parse()?, "ttl", name_span, errors);
    Ok(())
}

fn parse_key(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::key>(input)?;
    if !input.peek(LitStr) {
        let value = input.parse()?;
        args.key_expr = Some(Arg { name_span, value });
        return Ok(());
    }
    match Template::parse(&input.parse()?, "key") {
        Ok(value) => args.key = Some(Arg { name_span, value }),
        Err(error) => errors.push(error),
    }
    Ok(())
}

fn parse_keys(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::keys>(input)?;
    args.keys = templates(input, "keys", name_span, errors)?;
    Ok(())
}

fn parse_tags(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::tags>(input)?;
    args.tags = templates(input, "tags", name_span, errors)?;
    Ok(())
}

fn parse_cache(args: &mut Args, input: ParseStream, _: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::cache>(input)?;
    let value = input.parse()?;
    args.cache = Some(Arg { name_span, value });
    Ok(())
}

fn parse_negative_ttl(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::negative_ttl>(input)?;
    args.negative_ttl = milliseconds(&input.parse()?, "negative_ttl", name_span, errors);
    Ok(())
}

fn parse_cache_none(args: &mut Args, input: ParseStream, _: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::cache_none>(input)?;
    args.cache_none = Some(flag(input, name_span)?);
    Ok(())
}

fn parse_lock(args: &mut Args, input: ParseStream, _: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::lock>(input)?;
    args.lock = Some(flag(input, name_span)?);
    Ok(())
}

fn parse_lock_timeout(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::lock_timeout>(input)?;
    args.lock_timeout = milliseconds(&input.parse()?, "lock_timeout", name_span, errors);
    Ok(())
}

fn parse_early_refresh(args: &mut Args, input: ParseStream, _: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::early_refresh>(input)?;
    args.early_refresh = Some(flag(input, name_span)?);
    Ok(())
}

fn parse_beta(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::beta>(input)?;
    let value: Expr = input.parse()?;
    let number = match &value {
        Expr::Lit(ExprLit {
            lit: Lit::Float(float),
            ..
        }) => float.base10_parse::<f64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<f64>().ok(),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => Some(-1.0),
        _ => None,
    };
    match number {
        Some(beta) if beta > 0.0 && beta.is_finite() => {
            args.beta = Some(Arg {
                name_span,
                value: beta,
            });
        }
        Some(_) => errors.push(syn::Error::new_spanned(
            value,
            "`beta` must be a finite number greater than zero, like `beta = 1.5`",
        )),
        None => errors.push(syn::Error::new_spanned(
            value,
            "`beta` takes a number, like `beta = 1.5`",
        )),
    }
    Ok(())
}

fn parse_stale(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::stale>(input)?;
    args.stale = milliseconds(&input.parse()?, "stale", name_span, errors);
    Ok(())
}

fn parse_sliding(args: &mut Args, input: ParseStream, _: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::sliding>(input)?;
    args.sliding = Some(flag(input, name_span)?);
    Ok(())
}

fn parse_ttl_profile(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::ttl_profile>(input)?;
    let literal: LitStr = input.parse()?;
    let value = literal.value();
    let valid = !value.is_empty()
        && value
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    if valid {
        args.ttl_profile = Some(Arg { name_span, value });
    } else {
        errors.push(syn::Error::new(
            literal.span(),
            format!(
                "invalid `ttl_profile` {value:?}: a profile name is made of lowercase letters, \
                 digits and `_`, like `ttl_profile = \"product_price\"`"
            ),
        ));
    }
    Ok(())
}

fn parse_name(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::name>(input)?;
    let literal: LitStr = input.parse()?;
    let value = literal.value();
    let valid = !value.is_empty()
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_.:/-".contains(&byte));
    if valid {
        args.name = Some(Arg {
            name_span,
            value: literal,
        });
    } else {
        errors.push(syn::Error::new(
            literal.span(),
            format!(
                "invalid `name` {value:?}: a function's name is made of letters, digits and \
                 `_ . : / -`, like `name = \"users.get\"`"
            ),
        ));
    }
    Ok(())
}

fn parse_unless(args: &mut Args, input: ParseStream, _: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::unless>(input)?;
    let value = input.parse()?;
    args.unless = Some(Arg { name_span, value });
    Ok(())
}

fn parse_condition(args: &mut Args, input: ParseStream, _: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::condition>(input)?;
    let value = input.parse()?;
    args.condition = Some(Arg { name_span, value });
    Ok(())
}

fn parse_version(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::version>(input)?;
    let value: Expr = input.parse()?;
    let version = match &value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u64>().ok(),
        _ => None,
    };
    match version {
        Some(0) => errors.push(syn::Error::new_spanned(
            value,
            "`version` must be greater than zero, like `version = 2`",
        )),
        Some(version) => {
            args.version = Some(Arg {
                name_span,
                value: version,
            });
        }
        None => errors.push(syn::Error::new_spanned(
            value,
            "`version` takes a whole number greater than zero, like `version = 2`",
        )),
    }
    Ok(())
}

fn parse_companions(args: &mut Args, input: ParseStream, _: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::companions>(input)?;
    args.companions = Some(flag(input, name_span)?);
    Ok(())
}

fn parse_detach(args: &mut Args, input: ParseStream, _: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::detach>(input)?;
    args.detach = Some(flag(input, name_span)?);
    Ok(())
}

fn parse_on_cache_error(
    args: &mut Args,
    input: ParseStream,
    errors: &mut Errors,
) -> syn::Result<()> {
    let name_span = argument_name::<kw::on_cache_error>(input)?;
    let value: Expr = input.parse()?;
    let Expr::Lit(ExprLit {
        lit: Lit::Str(text),
        ..
    }) = &value
    else {
        errors.push(syn::Error::new_spanned(
            value,
            "`on_cache_error` takes \"fail\" or \"ignore\", like `on_cache_error = \"fail\"`",
        ));
        return Ok(());
    };
    let fail = match text.value().as_str() {
        "fail" => true,
        "ignore" => false,
        other => {
            errors.push(syn::Error::new(
                text.span(),
                format!(
                    "unknown `on_cache_error` {other:?}, expected one of: \"fail\", \"ignore\""
                ),
            ));
            return Ok(());
        }
    };
    let span = text.span();
    args.on_cache_error = Some(Arg {
        name_span,
        value: OnCacheError { fail, span },
    });
    Ok(())
}

fn parse_codec(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::codec>(input)?;
    args.codec = choice(input, "codec", CODECS, name_span, errors)?;
    Ok(())
}

fn parse_compress(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<kw::compress>(input)?;
    args.compress = choice(input, "compress", COMPRESSIONS, name_span, errors)?;
    Ok(())
}

fn parse_compress_above(
    args: &mut Args,
    input: ParseStream,
    errors: &mut Errors,
) -> syn::Result<()> {
    let name_span = argument_name::<kw::compress_above>(input)?;
    let value: Expr = input.parse()?;
    let bytes = match &value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => byte_size(&text.value()),
        _ => None,
    };
    match bytes {
        Some(value) => args.compress_above = Some(Arg { name_span, value }),
        None => errors.push(syn::Error::new_spanned(
            value,
            "`compress_above` takes a size in bytes, like `compress_above = 4096` or \
             `compress_above = \"4KiB\"` (units B, KiB, MiB)",
        )),
    }
    Ok(())
}

/// `"512"`, `"512B"`, `"4KiB"`, `"1MiB"` in bytes; `None` for anything else.
fn byte_size(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let scale = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(scale)
}

/// Reads a string literal that must be one of `choices`; another is an error on the literal.
fn choice(
    input: ParseStream,
    argument: &str,
    choices: &[&str],
    name_span: Span,
    errors: &mut Errors,
) -> syn::Result<Option<Arg<LitStr>>> {
    let value: Expr = input.parse()?;
    let expected = choices
        .iter()
        .map(|choice| format!("{choice:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let Expr::Lit(ExprLit {
        lit: Lit::Str(literal),
        ..
    }) = value
    else {
        errors.push(syn::Error::new_spanned(
            value,
            format!("`{argument}` takes a string, one of: {expected}"),
        ));
        return Ok(None);
    };
    let text = literal.value();
    if choices.contains(&text.as_str()) {
        return Ok(Some(Arg {
            name_span,
            value: literal,
        }));
    }
    let message = match closest(&text, choices) {
        Some(meant) => format!("unknown `{argument}` {text:?}; did you mean {meant:?}?"),
        None => format!("unknown `{argument}` {text:?}, expected one of: {expected}"),
    };
    errors.push(syn::Error::new(literal.span(), message));
    Ok(None)
}

fn parse_crate(args: &mut Args, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
    let name_span = argument_name::<Token![crate]>(input)?;
    match input.parse::<LitStr>()?.parse::<Path>() {
        Ok(value) => args.krate = Some(Arg { name_span, value }),
        Err(error) => errors.push(error),
    }
    Ok(())
}

/// Reads a list of templates, `["org:<org_id>", "users"]`, for the argument `argument`. An
/// empty list is an error, as each template that does not parse; the others are kept, so that
/// their placeholders are checked too.
fn templates(
    input: ParseStream,
    argument: &str,
    name_span: Span,
    errors: &mut Errors,
) -> syn::Result<Option<Arg<Vec<Template>>>> {
    if input.peek(LitStr) {
        let literal: LitStr = input.parse()?;
        errors.push(syn::Error::new(
            literal.span(),
            format!(
                "`{argument}` takes a list of templates in brackets, like `{argument} = [{}]`",
                literal.token()
            ),
        ));
        return Ok(None);
    }
    let content;
    let brackets = syn::bracketed!(content in input);
    let literals = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
    if literals.is_empty() {
        errors.push(syn::Error::new(
            brackets.span.join(),
            format!(
                "`{argument}` is empty; list at least one template, like \
                 `{argument} = [\"user:<id>\"]`, or remove it"
            ),
        ));
        return Ok(None);
    }
    let mut value = Vec::with_capacity(literals.len());
    for literal in &literals {
        match Template::parse(literal, argument) {
            Ok(template) => value.push(template),
            Err(error) => errors.push(error),
        }
    }
    Ok(Some(Arg { name_span, value }))
}

/// Reads `true` or `false`.
fn flag(input: ParseStream, name_span: Span) -> syn::Result<Arg<bool>> {
    let value = input.parse::<LitBool>()?.value;
    Ok(Arg { name_span, value })
}

/// Reads a duration argument, in milliseconds: whole seconds (`3600`) or a duration string
/// (`"1h30m"`, `"250ms"`). Zero is an error for every duration argument.
///
/// The expression is parsed whole, rather than as a literal, so that `-5` or `5 * 60` are
/// reported as one span with a message about durations.
fn milliseconds(
    value: &Expr,
    name: &str,
    name_span: Span,
    errors: &mut Errors,
) -> Option<Arg<u64>> {
    let millis = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) if !int.base10_digits().starts_with('-') => int
            .base10_parse::<u64>()
            .ok()
            .and_then(|secs| secs.checked_mul(1_000))
            .ok_or_else(|| format!("`{name}` is too large")),
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => cachemacro_duration::parse(&text.value())
            .map(|duration| duration.as_millis() as u64)
            .map_err(|reason| {
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
    match millis {
        Ok(0) => errors.push(syn::Error::new_spanned(
            value,
            format!("`{name}` must be longer than zero"),
        )),
        Ok(millis) => {
            return Some(Arg {
                name_span,
                value: millis,
            })
        }
        Err(message) => errors.push(syn::Error::new_spanned(value, message)),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn whole_seconds_too_large() {
        assert_eq!(
            error_messages(quote!(ttl = 18446744073709552)),
            ["`ttl` is too large"]
        );
    }

    fn parse_ok(tokens: TokenStream) -> Args {
        parse_ok_for(Macro::Cached, tokens)
    }

    fn parse_ok_for(attribute: Macro, tokens: TokenStream) -> Args {
        let mut errors = Errors::default();
        let args = parse(tokens, attribute, &mut errors);
        if let Err(error) = errors.finish() {
            panic!("unexpected error: {error}");
        }
        args
    }

    fn error_messages(tokens: TokenStream) -> Vec<String> {
        error_messages_for(Macro::Cached, tokens)
    }

    fn error_messages_for(attribute: Macro, tokens: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        parse(tokens, attribute, &mut errors);
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
            lock = false,
            lock_timeout = "1s500ms",
            early_refresh = true,
            beta = 2,
            stale = "10m",
            sliding = false,
            ttl_profile = "product_price_2",
            version = 3,
            companions = false,
            detach = false,
            on_cache_error = "fail",
            tags = ["org:<org>", "users",],
            crate = "reexport::runtime"
        ));
        assert_eq!(args.ttl.map(|arg| arg.value), Some(3_600_000));
        assert_eq!(args.key.map(|arg| arg.value.segments.len()), Some(2));
        assert!(args.cache.is_some());
        assert_eq!(args.negative_ttl.map(|arg| arg.value), Some(30_000));
        assert_eq!(args.cache_none.map(|arg| arg.value), Some(true));
        assert_eq!(args.lock.map(|arg| arg.value), Some(false));
        assert_eq!(args.lock_timeout.map(|arg| arg.value), Some(1_500));
        assert_eq!(args.early_refresh.map(|arg| arg.value), Some(true));
        assert_eq!(args.beta.map(|arg| arg.value), Some(2.0));
        assert_eq!(args.stale.map(|arg| arg.value), Some(600_000));
        assert_eq!(args.sliding.map(|arg| arg.value), Some(false));
        assert_eq!(
            args.ttl_profile.map(|arg| arg.value).as_deref(),
            Some("product_price_2")
        );
        assert_eq!(args.version.map(|arg| arg.value), Some(3));
        assert_eq!(args.companions.map(|arg| arg.value), Some(false));
        assert_eq!(args.detach.map(|arg| arg.value), Some(false));
        assert!(args.on_cache_error.is_some_and(|arg| arg.value.fail));
        assert_eq!(args.tags.map(|arg| arg.value.len()), Some(2));
        assert_eq!(args.krate.map(|arg| arg.value.segments.len()), Some(2));
    }

    #[test]
    fn write_attributes_take_their_own_arguments() {
        let put = parse_ok_for(
            Macro::CachePut,
            quote!(
                key = "user:<user.id>",
                ttl = 60,
                ttl_profile = "users",
                tags = ["org:<user.org>"],
                version = 2,
                cache = self.cache,
                crate = "runtime"
            ),
        );
        assert!(put.key.is_some() && put.cache.is_some() && put.krate.is_some());
        assert_eq!(put.given.len(), 7);
        let invalidate = parse_ok_for(
            Macro::CacheInvalidate,
            quote!(
                keys = ["a:<id>", "b:<id>"],
                tags = ["t"],
                cache = cache,
                crate = "runtime"
            ),
        );
        assert_eq!(invalidate.keys.map(|arg| arg.value.len()), Some(2));
        assert_eq!(invalidate.tags.map(|arg| arg.value.len()), Some(1));
    }

    #[test]
    fn unknown_arguments_list_what_the_attribute_accepts() {
        assert_eq!(
            error_messages(quote!(expiry = 5)),
            [
                "unknown argument `expiry`, expected one of: ttl, key, tags, cache, \
                 negative_ttl, cache_none, lock, lock_timeout, early_refresh, beta, stale, \
                 sliding, ttl_profile, version, companions, detach, on_cache_error, name, \
                 unless, condition, codec, compress, compress_above, crate"
            ]
        );
        assert_eq!(
            error_messages_for(Macro::CacheInvalidate, quote!(ttl = 5)),
            [
                "`ttl` is an argument of `#[cached]` and `#[cache_put]`, not of \
                 `#[cache_invalidate]`; expected one of: keys, tags, cache, on_cache_error, crate"
            ]
        );
        assert_eq!(
            error_messages_for(Macro::CachePut, quote!(stale = 5)),
            [
                "`stale` is an argument of `#[cached]`, not of `#[cache_put]`; expected one of: \
                 ttl, key, tags, cache, ttl_profile, version, on_cache_error, name, codec, \
                 compress, compress_above, crate"
            ]
        );
    }

    #[test]
    fn near_misses_suggest_the_argument() {
        let cases = [
            ("tll", "ttl"),
            ("TTL", "ttl"),
            ("tag", "tags"),
            ("cahce", "cache"),
            ("negative_tll", "negative_ttl"),
            ("lock_timout", "lock_timeout"),
            ("ttlprofile", "ttl_profile"),
            ("early_refesh", "early_refresh"),
            ("companion", "companions"),
        ];
        for (given, meant) in cases {
            let name = Ident::new(given, Span::call_site());
            assert_eq!(
                error_messages(quote!(#name = 1)),
                [format!(
                    "unknown argument `{given}`, did you mean `{meant}`?"
                )],
                "{given}"
            );
        }
        // A near miss inside the attribute is preferred to the attribute that takes the name.
        assert_eq!(
            error_messages_for(Macro::CacheInvalidate, quote!(key = "a")),
            [
                "`key` is an argument of `#[cached]` and `#[cache_put]`, not of \
                 `#[cache_invalidate]`; did you mean `keys`?"
            ]
        );
        assert_eq!(
            error_messages(quote!(keys = ["a"])),
            [
                "`keys` is an argument of `#[cache_invalidate]`, not of `#[cached]`; did you mean \
              `key`?"
            ]
        );
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("ttl", "ttl"), 0);
        assert_eq!(edit_distance("tll", "ttl"), 1);
        assert_eq!(edit_distance("cahce", "cache"), 1);
        assert_eq!(edit_distance("", "key"), 3);
        assert_eq!(edit_distance("tags", ""), 4);
        assert_eq!(edit_distance("stale", "sliding"), 6);
        assert_eq!(closest("x", &["ttl", "key"]), None);
        assert_eq!(closest("kez", &["ttl", "key", "keys"]), Some("key"));
    }

    #[test]
    fn every_attribute_has_arguments_and_every_row_an_attribute() {
        for attribute in [Macro::Cached, Macro::CachePut, Macro::CacheInvalidate] {
            assert!(arguments_of(attribute).count() >= 4, "{attribute:?}");
        }
        assert!(ARGUMENTS
            .iter()
            .all(|(_, _, accepted_by)| !accepted_by.is_empty()));
    }

    #[test]
    fn template_lists() {
        assert_eq!(
            error_messages(quote!(tags = [])),
            [
                "`tags` is empty; list at least one template, like `tags = [\"user:<id>\"]`, or \
              remove it"
            ]
        );
        assert_eq!(
            error_messages_for(Macro::CacheInvalidate, quote!(keys = [])),
            [
                "`keys` is empty; list at least one template, like `keys = [\"user:<id>\"]`, or \
              remove it"
            ]
        );
        assert_eq!(
            error_messages(quote!(tags = "users")),
            ["`tags` takes a list of templates in brackets, like `tags = [\"users\"]`"]
        );
        // Every template is checked; the valid ones are kept.
        let mut errors = Errors::default();
        let args = parse(quote!(tags = ["a:<", "ok", ""]), Macro::Cached, &mut errors);
        assert_eq!(args.tags.map(|arg| arg.value.len()), Some(1));
        let messages: Vec<String> = errors
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|error| error.to_string())
            .collect();
        assert_eq!(
            messages,
            [
                "unclosed placeholder `<` in the tag template; close it with `>`",
                "the tag template is empty; write for example `tags = [\"user:<id>\"]`",
            ]
        );
        assert_eq!(
            error_messages(quote!(tags = [org_id])),
            ["expected string literal"]
        );
    }

    #[test]
    fn ttl_profile_names() {
        for name in ["a", "product_price", "v2", "_"] {
            let args = parse_ok(quote!(ttl_profile = #name));
            assert_eq!(args.ttl_profile.map(|arg| arg.value).as_deref(), Some(name));
        }
        for name in ["", "Product", "product-price", "a b", "é"] {
            let messages = error_messages(quote!(ttl_profile = #name));
            assert_eq!(messages.len(), 1, "{name}");
            assert!(
                messages[0].starts_with(&format!("invalid `ttl_profile` {name:?}")),
                "{messages:?}"
            );
        }
    }

    #[test]
    fn version_values() {
        assert_eq!(
            parse_ok(quote!(version = 12)).version.map(|arg| arg.value),
            Some(12)
        );
        assert_eq!(
            parse_ok(quote!(version = 2u32))
                .version
                .map(|arg| arg.value),
            Some(2)
        );
        assert_eq!(
            error_messages(quote!(version = 0)),
            ["`version` must be greater than zero, like `version = 2`"]
        );
        let not_a_number = "`version` takes a whole number greater than zero, like `version = 2`";
        for tokens in [
            quote!(version = -1),
            quote!(version = "2"),
            quote!(version = 1.5),
            quote!(version = V),
        ] {
            assert_eq!(error_messages(tokens), [not_a_number]);
        }
    }

    #[test]
    fn on_cache_error_values() {
        for attribute in [Macro::Cached, Macro::CachePut, Macro::CacheInvalidate] {
            let fail = parse_ok_for(attribute, quote!(on_cache_error = "fail"));
            assert!(fail.fails_on_cache_error().is_some(), "{attribute:?}");
            let ignore = parse_ok_for(attribute, quote!(on_cache_error = "ignore"));
            assert!(ignore.on_cache_error.is_some_and(|arg| !arg.value.fail));
        }
        assert!(parse_ok(quote!()).fails_on_cache_error().is_none());
        assert!(parse_ok(quote!(on_cache_error = "ignore"))
            .fails_on_cache_error()
            .is_none());
        for value in ["panic", "Fail", ""] {
            assert_eq!(
                error_messages(quote!(on_cache_error = #value)),
                [format!(
                    "unknown `on_cache_error` {value:?}, expected one of: \"fail\", \"ignore\""
                )]
            );
        }
        let not_a_string =
            "`on_cache_error` takes \"fail\" or \"ignore\", like `on_cache_error = \"fail\"`";
        for tokens in [quote!(on_cache_error = fail), quote!(on_cache_error = true)] {
            assert_eq!(error_messages(tokens), [not_a_string]);
        }
    }

    #[test]
    fn sliding_entries_never_refresh() {
        assert!(!parse_ok(quote!(sliding = true)).refreshes());
        assert!(parse_ok(quote!(sliding = false)).refreshes());
    }

    #[test]
    fn order_of_arguments() {
        let args = parse_ok(quote!(stale = "1m", ttl = 5, sliding = true));
        assert!(args.given_after("sliding", "stale"));
        assert!(!args.given_after("stale", "sliding"));
        assert!(args.given_after("ttl", "lock"), "given after one not given");
    }

    #[test]
    fn empty_and_trailing_comma() {
        assert!(parse_ok(quote!()).ttl.is_none());
        assert_eq!(
            parse_ok(quote!(ttl = 5,)).ttl.map(|arg| arg.value),
            Some(5_000)
        );
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
                "unknown argument `tll`, did you mean `ttl`?",
                "`ttl` must be longer than zero",
                "duplicate `ttl` argument",
                "`negative_ttl` cannot be negative",
                "placeholders `<a>` and `<b>` must be separated by a character such as `:`; \
                 letters, digits, `_`, `-`, `.` and `%` can occur in values, so they do not \
                 separate them",
            ]
        );
    }

    #[test]
    fn ttl_values() {
        assert_eq!(
            parse_ok(quote!(ttl = 60u64)).ttl.map(|arg| arg.value),
            Some(60_000)
        );
        assert_eq!(
            parse_ok(quote!(ttl = "250ms")).ttl.map(|arg| arg.value),
            Some(250)
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
            ["`ttl` must be longer than zero"]
        );
        assert_eq!(
            error_messages(quote!(ttl = "0ms")),
            ["`ttl` must be longer than zero"]
        );
        assert_eq!(
            error_messages(quote!(ttl = "1x")),
            [
                "invalid duration \"1x\" for `ttl`: unknown unit `x`; write a number and a unit \
              for each of d, h, m, s, ms, largest first, like \"1h30m\" or \"1s500ms\""
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
    fn every_duration_argument_rejects_zero() {
        assert_eq!(
            error_messages(quote!(
                ttl = "0ms",
                negative_ttl = 0,
                lock_timeout = "0s",
                stale = "0ms"
            )),
            [
                "`ttl` must be longer than zero",
                "`negative_ttl` must be longer than zero",
                "`lock_timeout` must be longer than zero",
                "`stale` must be longer than zero",
            ]
        );
    }

    #[test]
    fn beta_values() {
        assert_eq!(
            parse_ok(quote!(beta = 0.5)).beta.map(|arg| arg.value),
            Some(0.5)
        );
        assert_eq!(
            parse_ok(quote!(beta = 3)).beta.map(|arg| arg.value),
            Some(3.0)
        );
        assert_eq!(
            parse_ok(quote!(beta = 1.5f64)).beta.map(|arg| arg.value),
            Some(1.5)
        );
        let not_positive = "`beta` must be a finite number greater than zero, like `beta = 1.5`";
        for tokens in [
            quote!(beta = 0),
            quote!(beta = 0.0),
            quote!(beta = -1.0),
            quote!(beta = 1e999),
        ] {
            assert_eq!(error_messages(tokens), [not_positive]);
        }
        assert_eq!(
            error_messages(quote!(beta = "1.5")),
            ["`beta` takes a number, like `beta = 1.5`"]
        );
    }

    #[test]
    fn refreshing_needs_early_refresh_or_a_stale_window() {
        assert!(parse_ok(quote!()).refreshes());
        assert!(!parse_ok(quote!(early_refresh = false)).refreshes());
        assert!(parse_ok(quote!(early_refresh = false, stale = "1m")).refreshes());
    }

    #[test]
    fn codecs_and_compressions_are_checked_by_name_and_sizes_by_unit() {
        let args = parse_ok(quote!(
            codec = "msgpack",
            compress = "lz4",
            compress_above = "4KiB"
        ));
        assert_eq!(
            args.codec.map(|arg| arg.value.value()).as_deref(),
            Some("msgpack")
        );
        assert_eq!(
            args.compress.map(|arg| arg.value.value()).as_deref(),
            Some("lz4")
        );
        assert_eq!(args.compress_above.map(|arg| arg.value), Some(4096));
        assert_eq!(
            parse_ok(quote!(compress_above = 300))
                .compress_above
                .map(|arg| arg.value),
            Some(300)
        );
        assert_eq!(byte_size("1MiB"), Some(1 << 20));
        assert_eq!(byte_size("512 B"), Some(512));
        assert_eq!(byte_size("1MB"), None);
        assert_eq!(byte_size("KiB"), None);
        assert_eq!(
            error_messages(quote!(codec = "xml")),
            ["unknown `codec` \"xml\", expected one of: \"json\", \"msgpack\", \"postcard\""]
        );
        assert_eq!(
            error_messages(quote!(compress = "lz5")),
            ["unknown `compress` \"lz5\"; did you mean \"lz4\"?"]
        );
        assert_eq!(
            error_messages(quote!(codec = json)),
            ["`codec` takes a string, one of: \"json\", \"msgpack\", \"postcard\""]
        );
    }

    #[test]
    fn syntax_errors_stop_the_parse() {
        assert_eq!(error_messages(quote!(ttl 5)), ["expected `=`"]);
        assert_eq!(
            error_messages(quote!("x")),
            [
                "expected an argument, expected one of: ttl, key, tags, cache, negative_ttl, \
              cache_none, lock, lock_timeout, early_refresh, beta, stale, sliding, ttl_profile, \
              version, companions, detach, on_cache_error, name, unless, condition, codec, \
              compress, compress_above, crate"
            ]
        );
    }

    #[test]
    fn names_of_functions() {
        for name in ["users.get", "app::Users::get", "orders/total-v2", "a_b"] {
            let args = parse_ok(quote!(name = #name));
            assert_eq!(
                args.name.map(|arg| arg.value.value()).as_deref(),
                Some(name)
            );
        }
        for name in ["", "users get", "user(1)", "a<b>", "é"] {
            let messages = error_messages(quote!(name = #name));
            assert!(
                messages[0].starts_with(&format!("invalid `name` {name:?}")),
                "{name}: {messages:?}"
            );
        }
    }

    #[test]
    fn a_key_is_a_template_or_an_expression() {
        let args = parse_ok(quote!(key = "user:<id>"));
        assert!(args.key.is_some() && args.key_expr.is_none());
        let args = parse_ok(quote!(key = format!("user:{}", id), ttl = 5));
        assert!(args.key.is_none() && args.key_expr.is_some());
        let mentions = args.key_expr_mentions().unwrap();
        assert!(mentions.iter().any(|ident| ident == "id"), "{mentions:?}");
        // A name inside a format string is not seen: the companions then mark that parameter
        // used themselves, which is harmless.
        let args = parse_ok(quote!(key = format!("user:{id}")));
        assert!(!args
            .key_expr_mentions()
            .unwrap()
            .iter()
            .any(|ident| ident == "id"));
    }

    #[test]
    fn unless_and_condition_take_expressions() {
        let args = parse_ok(quote!(
            unless = |v| v.is_empty(),
            condition = id != 0,
            ttl = 5
        ));
        assert!(args.unless.is_some());
        assert!(args.condition.is_some());
        assert_eq!(args.ttl.map(|arg| arg.value), Some(5000));
    }
}

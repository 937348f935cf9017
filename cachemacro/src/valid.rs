//! Checks across arguments, and checks that need both the arguments and the function they
//! annotate.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{GenericArgument, Lifetime, PathArguments, Type, TypeReference};

use crate::ast::{Binding, Body, Function, Returns};
use crate::attr::{Arg, Args, Macro};
use crate::errors::Errors;
use crate::template::Template;

/// Records in `errors` every way the arguments of `attribute` contradict or miss one another.
/// Needs no function, so it runs even when the item is not one the attribute can take.
pub(crate) fn check_arguments(attribute: Macro, args: &Args, errors: &mut Errors) {
    check_compress_above(args, errors);
    match attribute {
        Macro::Cached => {
            check_early_refresh_arguments(args, errors);
            check_sliding(args, errors);
        }
        Macro::CachePut => {
            if args.key.is_none() && args.key_expr.is_none() {
                errors.push(syn::Error::new(
                    Span::call_site(),
                    "`#[cache_put]` needs a `key`, like `#[cache_put(key = \"user:<id>\")]`",
                ));
            }
        }
        Macro::CacheInvalidate => {
            if args.keys.is_none() && args.tags.is_none() {
                errors.push(syn::Error::new(
                    Span::call_site(),
                    "`#[cache_invalidate]` needs `keys` or `tags`, like \
                     `#[cache_invalidate(keys = [\"user:<id>\"])]`",
                ));
            }
        }
    }
}

/// Records in `errors` every way `args` does not fit `func`.
pub(crate) fn check(attribute: Macro, args: &Args, func: &Function, errors: &mut Errors) {
    if attribute == Macro::Cached {
        check_option_arguments(args, func, errors);
        check_companions(args, func, errors);
    }
    if attribute != Macro::CacheInvalidate {
        check_owned(attribute, func, errors);
    }
    match (&args.key, attribute) {
        (Some(key), _) => check_placeholders(&key.value, func, errors),
        (None, Macro::Cached) if args.key_expr.is_none() => check_default_key(args, func, errors),
        (None, _) => {}
    }
    for templates in [&args.keys, &args.tags].into_iter().flatten() {
        for template in &templates.value {
            check_placeholders(template, func, errors);
        }
    }
}

/// `negative_ttl` and `cache_none` are about caching `None`, so they need an `Option`.
fn check_option_arguments(args: &Args, func: &Function, errors: &mut Errors) {
    if func.returns != Returns::Option {
        let option_only = [
            (
                "negative_ttl",
                args.negative_ttl.as_ref().map(|arg| arg.name_span),
            ),
            (
                "cache_none",
                args.cache_none.as_ref().map(|arg| arg.name_span),
            ),
        ];
        for (name, span) in option_only {
            if let Some(span) = span {
                errors.push(syn::Error::new(
                    span,
                    format!("`{name}` applies only to functions returning `Option`"),
                ));
            }
        }
    } else if let (Some(negative_ttl), Some(Arg { value: false, .. })) =
        (&args.negative_ttl, &args.cache_none)
    {
        errors.push(syn::Error::new(
            negative_ttl.name_span,
            "`negative_ttl` has no effect with `cache_none = false`; remove one of them",
        ));
    }
}

/// `compress_above` sets the threshold of a compression, so it needs one.
fn check_compress_above(args: &Args, errors: &mut Errors) {
    let Some(above) = &args.compress_above else {
        return;
    };
    let compresses = args
        .compress
        .as_ref()
        .is_some_and(|arg| arg.value.value() != "none");
    if !compresses {
        errors.push(syn::Error::new(
            above.name_span,
            "`compress_above` needs a compression, like `compress = \"lz4\", compress_above = \
             \"4KiB\"`",
        ));
    }
}

/// `beta` tunes early refresh, so it means nothing once early refresh is off.
fn check_early_refresh_arguments(args: &Args, errors: &mut Errors) {
    if let (Some(beta), Some(Arg { value: false, .. })) = (&args.beta, &args.early_refresh) {
        errors.push(syn::Error::new(
            beta.name_span,
            "`beta` has no effect with `early_refresh = false`; remove one of them",
        ));
    }
}

/// A sliding entry lives as long as it keeps being read: it has no expiry to refresh ahead of
/// (`early_refresh = true`, `beta`) or to serve past (`stale`). The error points at whichever of
/// the two arguments comes second.
fn check_sliding(args: &Args, errors: &mut Errors) {
    let Some(sliding @ Arg { value: true, .. }) = &args.sliding else {
        return;
    };
    let explicit_early_refresh = args.early_refresh.as_ref().filter(|arg| arg.value);
    let conflicts = [
        ("stale", args.stale.as_ref().map(|arg| arg.name_span)),
        ("beta", args.beta.as_ref().map(|arg| arg.name_span)),
        (
            "early_refresh",
            explicit_early_refresh.map(|arg| arg.name_span),
        ),
    ];
    for (name, span) in conflicts {
        let Some(span) = span else { continue };
        let span = if args.given_after(name, "sliding") {
            span
        } else {
            sliding.name_span
        };
        errors.push(syn::Error::new(
            span,
            format!(
                "`sliding` entries have no fixed expiry to refresh early or serve stale; remove \
                 `{name}` or `sliding`"
            ),
        ));
    }
}

/// Companions are extra methods, which the trait impl that `#[async_trait]` rewrote cannot hold.
fn check_companions(args: &Args, func: &Function, errors: &mut Errors) {
    if let (
        Some(Arg {
            value: true,
            name_span,
        }),
        Body::AsyncTrait { .. },
    ) = (&args.companions, &func.body)
    {
        errors.push(syn::Error::new(
            *name_span,
            "`companions` cannot be defined in an `#[async_trait]` impl: a trait impl holds \
             only the trait's methods; remove `companions = true`",
        ));
    }
}

/// What is stored must be owned: a hit decodes a new value, which cannot borrow from anything.
/// A reference never decodes into an owned value (not even `&'static str`); and the values of
/// `#[cached]` must be `'static`, so no lifetime other than `'static` may appear either. Types
/// inside a function pointer, a trait object or an `impl Trait` are left alone, as are those in
/// `PhantomData`.
fn check_owned(attribute: Macro, func: &Function, errors: &mut Errors) {
    let Some(stored) = func.stored() else {
        return;
    };
    let who = match attribute {
        Macro::Cached => "a cached function",
        _ => "a `#[cache_put]` function",
    };
    let intro = format!(
        "{who} must return an owned value, like `String`, `Vec<T>` or `Arc<T>`: the cache \
         stores it and decodes a new one on each hit, which cannot borrow"
    );
    match borrowed(stored, attribute == Macro::Cached) {
        Some(Borrowed::Reference(reference)) => errors.push(syn::Error::new_spanned(
            reference,
            format!("{intro}; return {}", owned_instead(reference)),
        )),
        Some(Borrowed::Lifetime(lifetime)) => errors.push(syn::Error::new_spanned(
            lifetime,
            format!("{intro} for `{lifetime}`"),
        )),
        None => {}
    }
}

/// Where a stored type borrows.
enum Borrowed<'a> {
    Reference(&'a TypeReference),
    /// A lifetime other than `'static`, as in `Cow<'a, str>`.
    Lifetime(&'a Lifetime),
}

/// The first place `ty` borrows, looking for lifetimes too when `lifetimes` is set.
fn borrowed(ty: &Type, lifetimes: bool) -> Option<Borrowed<'_>> {
    match ty {
        Type::Reference(reference) => Some(Borrowed::Reference(reference)),
        Type::Array(array) => borrowed(&array.elem, lifetimes),
        Type::Slice(slice) => borrowed(&slice.elem, lifetimes),
        Type::Group(group) => borrowed(&group.elem, lifetimes),
        Type::Paren(paren) => borrowed(&paren.elem, lifetimes),
        Type::Tuple(tuple) => tuple
            .elems
            .iter()
            .find_map(|elem| borrowed(elem, lifetimes)),
        Type::Path(path) => {
            let qself = path.qself.as_ref();
            if let Some(found) = qself.and_then(|qself| borrowed(&qself.ty, lifetimes)) {
                return Some(found);
            }
            let last = path.path.segments.last()?;
            if last.ident == "PhantomData" {
                return None;
            }
            path.path.segments.iter().find_map(|segment| {
                let PathArguments::AngleBracketed(arguments) = &segment.arguments else {
                    return None;
                };
                arguments.args.iter().find_map(|argument| match argument {
                    GenericArgument::Type(ty) => borrowed(ty, lifetimes),
                    GenericArgument::Lifetime(lifetime)
                        if lifetimes && lifetime.ident != "static" =>
                    {
                        Some(Borrowed::Lifetime(lifetime))
                    }
                    _ => None,
                })
            })
        }
        _ => None,
    }
}

/// What to return instead of `reference`: `String` instead of `&str`, ...
fn owned_instead(reference: &TypeReference) -> String {
    let written = text(reference.to_token_stream());
    let referent = &*reference.elem;
    let owned = match referent {
        Type::Slice(slice) => format!("`Vec<{}>`", text(slice.elem.to_token_stream())),
        Type::Path(path) if path.qself.is_none() && path.path.segments.len() == 1 => {
            let name = path.path.segments[0].ident.to_string();
            match name.as_str() {
                "str" => "`String`".to_owned(),
                "Path" => "`PathBuf`".to_owned(),
                "OsStr" => "`OsString`".to_owned(),
                "CStr" => "`CString`".to_owned(),
                _ => return owned_or_shared(referent, &written),
            }
        }
        _ => return owned_or_shared(referent, &written),
    };
    format!("{owned} instead of `{written}`")
}

fn owned_or_shared(referent: &Type, written: &str) -> String {
    let referent = text(referent.to_token_stream());
    format!("`{referent}`, or `Arc<{referent}>` to share it, instead of `{written}`")
}

/// `tokens` as a type is usually written: `Vec<u8>` rather than `Vec < u8 >`.
fn text(tokens: TokenStream) -> String {
    let mut text = String::new();
    let mut previous: Option<TokenTree> = None;
    for token in tokens {
        let spaced = match (&previous, &token) {
            (None, _) => false,
            (Some(TokenTree::Punct(before)), _)
                if matches!(before.as_char(), '<' | '&' | ':' | '\'') =>
            {
                false
            }
            (_, TokenTree::Punct(after)) => !matches!(after.as_char(), '<' | '>' | ',' | ':' | ';'),
            // `Fn(u8)`, but `mut [u8; 4]`.
            (Some(TokenTree::Ident(_)), TokenTree::Group(group)) => {
                group.delimiter() != proc_macro2::Delimiter::Parenthesis
            }
            _ => true,
        };
        if spaced {
            text.push(' ');
        }
        match &token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    proc_macro2::Delimiter::Parenthesis => ("(", ")"),
                    proc_macro2::Delimiter::Bracket => ("[", "]"),
                    proc_macro2::Delimiter::Brace => ("{", "}"),
                    proc_macro2::Delimiter::None => ("", ""),
                };
                text.push_str(open);
                text.push_str(&self::text(group.stream()));
                text.push_str(close);
            }
            token => text.push_str(&token.to_string()),
        }
        previous = Some(token);
    }
    text
}

fn check_placeholders(template: &Template, func: &Function, errors: &mut Errors) {
    let roots = func.placeholder_roots();
    for placeholder in template.placeholders() {
        if roots.contains(&placeholder.root) {
            continue;
        }
        let message = if func.has_type_param(&placeholder.root) {
            format!(
                "placeholder `{placeholder}` names the type parameter `{}`, which has no value to \
                 render; name a parameter or a const generic parameter",
                placeholder.root
            )
        } else if roots.is_empty() {
            format!(
                "placeholder `{placeholder}` names no parameter: `{}` has none",
                func.sig.ident
            )
        } else {
            format!(
                "placeholder `{placeholder}` names no parameter of `{}`, expected one of: {}",
                func.sig.ident,
                roots.join(", ")
            )
        };
        errors.push(syn::Error::new(template.span, message));
    }
}

/// The default key renders each parameter whole, which a destructuring pattern cannot be.
fn check_default_key(args: &Args, func: &Function, errors: &mut Errors) {
    let mentioned = args.cache_mentions();
    for (_, binding) in func.default_key_params(&mentioned) {
        if let Binding::Pattern(pat) = binding {
            errors.push(syn::Error::new_spanned(
                pat,
                "the default key cannot render a destructured parameter; bind it to a name \
                 or write a `key` template",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_written_as_usual() {
        for written in [
            "Vec<u8>",
            "&'a str",
            "&mut [u8; 4]",
            "::std::collections::HashMap<String, Vec<(u8, char)>>",
            "Box<dyn Fn(u8) -> u8 + Send>",
        ] {
            let ty: Type = syn::parse_str(written).unwrap();
            assert_eq!(text(ty.to_token_stream()), written);
        }
    }

    #[test]
    fn references_name_their_owned_form() {
        let cases = [
            ("&str", "`String` instead of `&str`"),
            ("&'static str", "`String` instead of `&'static str`"),
            ("&[u8]", "`Vec<u8>` instead of `&[u8]`"),
            ("&'a Path", "`PathBuf` instead of `&'a Path`"),
            (
                "&User",
                "`User`, or `Arc<User>` to share it, instead of `&User`",
            ),
            (
                "&Vec<Item>",
                "`Vec<Item>`, or `Arc<Vec<Item>>` to share it, instead of `&Vec<Item>`",
            ),
        ];
        for (written, owned) in cases {
            let Ok(Type::Reference(reference)) = syn::parse_str::<Type>(written) else {
                panic!("{written}");
            };
            assert_eq!(owned_instead(&reference), owned, "{written}");
        }
    }

    #[test]
    fn borrowing_is_found_where_values_are_stored() {
        let borrowing = [
            "&str",
            "Vec<&str>",
            "(u8, &[u8])",
            "[&'static str; 2]",
            "Box<&User>",
            "Cow<'a, str>",
            "Cow<'_, str>",
            "<T as Trait<'a>>::Output",
        ];
        for written in borrowing {
            let ty: Type = syn::parse_str(written).unwrap();
            assert!(borrowed(&ty, true).is_some(), "{written}");
        }
        let owned = [
            "String",
            "Vec<u8>",
            "Cow<'static, str>",
            "PhantomData<&'a str>",
            "Box<dyn Fn(&str) -> u8>",
            "fn(&str) -> u8",
            "T",
        ];
        for written in owned {
            let ty: Type = syn::parse_str(written).unwrap();
            assert!(borrowed(&ty, true).is_none(), "{written}");
        }
        // Without lifetimes, only references count.
        let ty: Type = syn::parse_str("Cow<'a, str>").unwrap();
        assert!(borrowed(&ty, false).is_none());
    }
}

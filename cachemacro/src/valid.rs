//! Checks across arguments, and checks that need both the arguments and the function they
//! annotate.

use proc_macro2::Span;

use crate::ast::{Binding, Body, Function, Returns};
use crate::attr::{Arg, Args, Macro};
use crate::errors::Errors;
use crate::template::Template;

/// Records in `errors` every way the arguments of `attribute` contradict or miss one another.
/// Needs no function, so it runs even when the item is not one the attribute can take.
pub(crate) fn check_arguments(attribute: Macro, args: &Args, errors: &mut Errors) {
    match attribute {
        Macro::Cached => {
            check_early_refresh_arguments(args, errors);
            check_sliding(args, errors);
        }
        Macro::CachePut => {
            if args.key.is_none() {
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
    match (&args.key, attribute) {
        (Some(key), _) => check_placeholders(&key.value, func, errors),
        (None, Macro::Cached) => check_default_key(args, func, errors),
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

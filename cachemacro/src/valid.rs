//! Checks that need both the arguments and the function they annotate.

use crate::ast::{Binding, Function, Returns};
use crate::attr::{Arg, Args};
use crate::errors::Errors;
use crate::template::Template;

/// Records in `errors` every way `args` does not fit `func`.
pub(crate) fn check(args: &Args, func: &Function, errors: &mut Errors) {
    check_option_arguments(args, func, errors);
    check_refresh_arguments(args, errors);
    match &args.key {
        Some(key) => check_placeholders(&key.value, func, errors),
        None => check_default_key(args, func, errors),
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
fn check_refresh_arguments(args: &Args, errors: &mut Errors) {
    if let (Some(beta), Some(Arg { value: false, .. })) = (&args.beta, &args.early_refresh) {
        errors.push(syn::Error::new(
            beta.name_span,
            "`beta` has no effect with `early_refresh = false`; remove one of them",
        ));
    }
}

fn check_placeholders(template: &Template, func: &Function, errors: &mut Errors) {
    let roots = func.placeholder_roots();
    for placeholder in template.placeholders() {
        if roots.contains(&placeholder.root) {
            continue;
        }
        let message = if roots.is_empty() {
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

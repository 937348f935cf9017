// Input:
//
//     #[cached(ttl = "1h", key = "user:<id>", stale = "10m")]
//     pub async fn get_user(id: u64) -> Result<User, DbError> {
//         db::load_user(id).await
//     }
//
// Output:
//
//     pub async fn get_user(id: u64) -> Result<User, DbError> {
//         static __CACHEMACRO_POLICY: ::cachemacro_runtime::__private::Policy =
//             ::cachemacro_runtime::__private::Policy::new()
//                 .ttl(::core::time::Duration::from_millis(3600000))
//                 .stale(::core::time::Duration::from_millis(600000));
//         let __cache = ::cachemacro_runtime::__private::global_cache();
//         let __key = {
//             let mut __key = ::cachemacro_runtime::__private::key_builder(&__cache, 32);
//             __key.literal("user:");
//             __key.value(&id);
//             __key.finish()
//         };
//         ::cachemacro_runtime::__private::cached_result(
//             &__cache,
//             __key,
//             &__CACHEMACRO_POLICY,
//             ::cachemacro_runtime::__private::Detached(move || async move {
//                 if false {
//                     let __cachemacro_fake_return: Result<User, DbError> = loop {};
//                     return __cachemacro_fake_return;
//                 }
//                 {
//                     db::load_user(id).await
//                 }
//             }),
//             {
//                 use ::cachemacro_runtime::__private::{ShareByClone as _, ShareNothing as _};
//                 (&::cachemacro_runtime::__private::SharingProbe::<Result<User, DbError>>::new())
//                     .sharing()
//             },
//         )
//         .await
//     }
//
// The signature, attributes and block are the user's tokens, so their spans survive. The fake
// early return gives the loader block its type up front: a mismatch is then reported inside the
// user's block rather than at the attribute. `__cache` and `__key` have mixed-site spans, so the
// user's code cannot see them.
//
// The loader is a closure the runtime calls at most once. `Detached` lets the runtime refresh the
// entry in a background task, which needs the body to be `Send + 'static`; it is chosen only
// when the signature shows that the body owns everything it uses and when hits can refresh at
// all (early refresh on, or a stale window). Otherwise `InCaller` runs a refresh in the task of
// the caller that drew it.
//
// The sharing block picks, by autoref specialization, whether the result of a failed load is
// cloned to the callers that waited on it (when the return type is `Clone`) or each of them runs
// the body itself. The traits are imported in a block of their own, so the user's block never
// sees them.
//
// For a method already rewritten by `#[async_trait]`, the same statements go inside the
// `Box::pin(async move { .. })` it produced, its inner `async move` block is the loader's
// future, and the cached type is that future's `Output`.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{GenericArgument, Ident, ItemFn, LitStr, Path, PathArguments, Token, Type, TypeInfer};

use crate::ast::{Binding, Body, Function, Returns};
use crate::attr::{self, Args};
use crate::errors::Errors;
use crate::template::{Segment, Template};
use crate::valid;

/// How long `None` stays cached when `negative_ttl` is not given, in milliseconds.
const DEFAULT_NEGATIVE_TTL_MILLIS: u64 = 60_000;

/// Bytes reserved in a key for each rendered value, on top of the literal text.
const VALUE_CAPACITY: usize = 16;

/// Expands `#[cached(args)] item`. On any error, emits `item` unchanged next to the errors, so
/// that code calling the function still type-checks and only the real mistakes are reported.
pub(crate) fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::parse(args, &mut errors);
    let func = match syn::parse2::<ItemFn>(item.clone()).and_then(Function::from_item) {
        Ok(func) => Some(func),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    if let Some(func) = &func {
        valid::check(&args, func, &mut errors);
    }
    match (errors.finish(), func) {
        (Ok(()), Some(func)) => expand(&args, &func),
        (result, _) => {
            let errors = result.err().map(|error| error.to_compile_error());
            quote!(#item #errors)
        }
    }
}

fn expand(args: &Args, func: &Function) -> TokenStream {
    let Function {
        outer_attrs,
        inner_attrs,
        vis,
        sig,
        body,
        ..
    } = func;
    let private = private_path(args);
    let cache = Ident::new("__cache", Span::mixed_site());
    let key = Ident::new("__key", Span::mixed_site());

    let cache_init = match &args.cache {
        Some(expr) => {
            let expr = &expr.value;
            quote_spanned!(expr.span()=> #private::cache_handle(&(#expr)))
        }
        None => quote!(#private::global_cache()),
    };
    let key_init = match &args.key {
        Some(template) => template_key(&template.value, &private, &cache, &key),
        None => default_key(args, func, &private, &cache, &key),
    };
    let policy = policy(args, func.returns, &private);
    let cached = match func.returns {
        Returns::Result => quote!(cached_result),
        Returns::Option => quote!(cached_option),
        Returns::Plain => quote!(cached_value),
    };
    // The cached type, with `impl Trait` erased so it can be written inside the body.
    let output = erase_impl_trait(&func.output);
    let body_future = match body {
        Body::Async(block) => {
            let fake_return = fake_return(&output);
            quote_spanned!(block.span()=> async move { #fake_return #block })
        }
        Body::AsyncTrait { loader, .. } => loader.to_token_stream(),
    };
    let loader = if func.can_outlive_caller() && args.refreshes() {
        quote!(Detached)
    } else {
        quote!(InCaller)
    };
    let sharing = quote! {{
        use #private::{ShareByClone as _, ShareNothing as _};
        (&#private::SharingProbe::<#output>::new()).sharing()
    }};
    let caching = quote! {
        static __CACHEMACRO_POLICY: #private::Policy = #policy;
        let #cache = #cache_init;
        let #key = #key_init;
        #private::#cached(
            &#cache,
            #key,
            &__CACHEMACRO_POLICY,
            #private::#loader(move || #body_future),
            #sharing,
        )
        .await
    };

    let body = match body {
        Body::Async(_) => caching,
        Body::AsyncTrait { boxing, .. } => {
            let mut boxing = boxing.clone();
            boxing
                .args
                .push(syn::Expr::Verbatim(quote!(async move { #caching })));
            boxing.into_token_stream()
        }
    };
    quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #body
        }
    }
}

/// `#krate::__private`, where `krate` defaults to `::cachemacro_runtime`.
fn private_path(args: &Args) -> TokenStream {
    match &args.krate {
        Some(krate) => {
            let krate: &Path = &krate.value;
            quote!(#krate::__private)
        }
        None => quote!(::cachemacro_runtime::__private),
    }
}

/// The `static` policy: only what differs from `Policy::new()` is set.
fn policy(args: &Args, returns: Returns, private: &TokenStream) -> TokenStream {
    let mut policy = quote!(#private::Policy::new());
    if let Some(ttl) = &args.ttl {
        let ttl = duration(ttl.value);
        policy.extend(quote!(.ttl(#ttl)));
    }
    if returns == Returns::Option {
        let cache_none = args.cache_none.as_ref().is_none_or(|arg| arg.value);
        let negative_ttl = if cache_none {
            let millis = args
                .negative_ttl
                .as_ref()
                .map_or(DEFAULT_NEGATIVE_TTL_MILLIS, |arg| arg.value);
            let ttl = duration(millis);
            quote!(::core::option::Option::Some(#ttl))
        } else {
            quote!(::core::option::Option::None)
        };
        policy.extend(quote!(.negative_ttl(#negative_ttl)));
    }
    if let Some(lock) = &args.lock {
        let lock = lock.value;
        policy.extend(quote!(.lock(#lock)));
    }
    if let Some(timeout) = &args.lock_timeout {
        let timeout = duration(timeout.value);
        policy.extend(quote!(.lock_timeout(#timeout)));
    }
    if let Some(early_refresh) = &args.early_refresh {
        let early_refresh = early_refresh.value;
        policy.extend(quote!(.early_refresh(#early_refresh)));
    }
    if let Some(beta) = &args.beta {
        let beta = Literal::f64_unsuffixed(beta.value);
        policy.extend(quote!(.beta(#beta)));
    }
    if let Some(stale) = &args.stale {
        let stale = duration(stale.value);
        policy.extend(quote!(.stale(#stale)));
    }
    policy
}

fn duration(millis: u64) -> TokenStream {
    let millis = Literal::u64_unsuffixed(millis);
    quote!(::core::time::Duration::from_millis(#millis))
}

/// The key from a `key` template. Values are spanned at the template, so a placeholder whose
/// value is not `Display` is reported there.
fn template_key(
    template: &Template,
    private: &TokenStream,
    cache: &Ident,
    key: &Ident,
) -> TokenStream {
    let span = template.span;
    let mut capacity = 0;
    let pushes = template.segments.iter().map(|segment| match segment {
        Segment::Literal(text) => {
            capacity += text.len();
            let text = LitStr::new(text, span);
            quote!(#key.literal(#text);)
        }
        Segment::Placeholder(placeholder) => {
            capacity += VALUE_CAPACITY;
            let root = Ident::new(&placeholder.root, span);
            let fields = placeholder
                .fields
                .iter()
                .map(|field| match field.parse::<u32>() {
                    Ok(index) => syn::Index { index, span }.into_token_stream(),
                    Err(_) => Ident::new(field, span).into_token_stream(),
                });
            quote_spanned!(span=> #key.value(&#root #(.#fields)*);)
        }
    });
    let pushes: Vec<TokenStream> = pushes.collect();
    build_key(private, cache, key, capacity, &pushes)
}

/// The key without a template: the function's path, then each parameter that is neither `self`
/// nor named in the `cache` expression, all separated by `:`. Each value is spanned at its
/// parameter, so one that is not `Display` is reported there.
fn default_key(
    args: &Args,
    func: &Function,
    private: &TokenStream,
    cache: &Ident,
    key: &Ident,
) -> TokenStream {
    let name = func.sig.ident.to_string();
    let name = LitStr::new(name.trim_start_matches("r#"), func.sig.ident.span());
    let mut pushes = vec![quote! {
        #key.literal(::core::concat!(::core::module_path!(), "::", #name));
    }];
    let mentioned = args.cache_mentions();
    for (param, binding) in func.default_key_params(&mentioned) {
        if let Binding::Named(ident) = binding {
            pushes.push(quote_spanned! {param.span()=>
                #key.literal(":");
                #key.value(&#ident);
            });
        }
    }
    // Room for a module path, the name and each value.
    let capacity = 32 + name.value().len() + pushes.len() * (1 + VALUE_CAPACITY);
    build_key(private, cache, key, capacity, &pushes)
}

fn build_key(
    private: &TokenStream,
    cache: &Ident,
    key: &Ident,
    capacity: usize,
    pushes: &[TokenStream],
) -> TokenStream {
    let capacity = Literal::usize_unsuffixed(capacity.next_power_of_two());
    quote! {{
        let mut #key = #private::key_builder(&#cache, #capacity);
        #(#pushes)*
        #key.finish()
    }}
}

/// `if false { return <value of the declared type>; }`, spanned at the return type: it fixes the
/// loader block's output type before its body is checked.
fn fake_return(output: &Type) -> TokenStream {
    quote_spanned! {output.span()=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let __cachemacro_fake_return: #output = loop {};
            return __cachemacro_fake_return;
        }
    }
}

/// `ty` with every `impl Trait` replaced by `_`: the opaque type cannot be named in the body,
/// but the rest of the type still guides inference.
fn erase_impl_trait(ty: &Type) -> Type {
    let mut ty = ty.clone();
    erase_impl_trait_in_place(&mut ty);
    ty
}

fn erase_impl_trait_in_place(ty: &mut Type) {
    match ty {
        Type::ImplTrait(impl_trait) => {
            *ty = Type::Infer(TypeInfer {
                underscore_token: Token![_](impl_trait.impl_token.span),
            });
        }
        Type::Array(array) => erase_impl_trait_in_place(&mut array.elem),
        Type::Group(group) => erase_impl_trait_in_place(&mut group.elem),
        Type::Paren(paren) => erase_impl_trait_in_place(&mut paren.elem),
        Type::Ptr(ptr) => erase_impl_trait_in_place(&mut ptr.elem),
        Type::Reference(reference) => erase_impl_trait_in_place(&mut reference.elem),
        Type::Slice(slice) => erase_impl_trait_in_place(&mut slice.elem),
        Type::Tuple(tuple) => tuple.elems.iter_mut().for_each(erase_impl_trait_in_place),
        Type::Path(path) => {
            for segment in &mut path.path.segments {
                if let PathArguments::AngleBracketed(args) = &mut segment.arguments {
                    for arg in &mut args.args {
                        if let GenericArgument::Type(ty) = arg {
                            erase_impl_trait_in_place(ty);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion with all whitespace removed, so it can be searched for token sequences.
    fn expanded(args: TokenStream, item: TokenStream) -> String {
        let mut text = cached(args, item).to_string();
        text.retain(|c| !c.is_whitespace());
        text
    }

    fn loader(args: TokenStream, item: TokenStream) -> &'static str {
        let text = expanded(args, item);
        match (
            text.contains("__private::Detached("),
            text.contains("__private::InCaller("),
        ) {
            (true, false) => "Detached",
            (false, true) => "InCaller",
            _ => panic!("no single loader in {text}"),
        }
    }

    #[test]
    fn owned_bodies_refresh_in_the_background_only_when_they_refresh() {
        let free_fn = quote!(
            async fn f(id: u64) -> u64 {
                id
            }
        );
        assert_eq!(loader(quote!(), free_fn.clone()), "Detached");
        assert_eq!(
            loader(quote!(early_refresh = true), free_fn.clone()),
            "Detached"
        );
        assert_eq!(
            loader(quote!(early_refresh = false), free_fn.clone()),
            "InCaller"
        );
        assert_eq!(
            loader(quote!(early_refresh = false, stale = "1m"), free_fn),
            "Detached"
        );
        let method = quote!(
            async fn f(&self, id: u64) -> u64 {
                id
            }
        );
        assert_eq!(loader(quote!(stale = "1m"), method), "InCaller");
    }

    #[test]
    fn policy_sets_only_what_is_given() {
        let item = quote!(
            async fn f(id: u64) -> u64 {
                id
            }
        );
        let text = expanded(quote!(), item.clone());
        assert!(text.contains("Policy=::cachemacro_runtime::__private::Policy::new();"));
        let text = expanded(
            quote!(
                ttl = "1s500ms",
                lock = false,
                lock_timeout = 2,
                early_refresh = true,
                beta = 1.5,
                stale = "250ms"
            ),
            item,
        );
        assert!(
            text.contains(
                "Policy::new().ttl(::core::time::Duration::from_millis(1500)).lock(false)\
                 .lock_timeout(::core::time::Duration::from_millis(2000)).early_refresh(true)\
                 .beta(1.5).stale(::core::time::Duration::from_millis(250));"
            ),
            "{text}"
        );
    }

    #[test]
    fn sharing_probes_the_cached_type() {
        let text = expanded(
            quote!(),
            quote!(
                async fn f(id: u64) -> Result<u64, String> {
                    Ok(id)
                }
            ),
        );
        assert!(
            text.contains("(&::cachemacro_runtime::__private::SharingProbe::<Result<u64,String>>::new()).sharing()"),
            "{text}"
        );
        let async_trait = expanded(
            quote!(),
            quote!(
                fn get(&self) -> Pin<Box<dyn Future<Output = Option<u64>> + Send + '_>> {
                    Box::pin(async move { None })
                }
            ),
        );
        assert!(
            async_trait.contains("SharingProbe::<Option<u64>>::new()"),
            "{async_trait}"
        );
    }
}

//! The companions of a `#[cached]` fn `name`: `invalidate_<name>` and `refresh_<name>`.
//!
//! Input:
//!
//! ```text
//! #[cached(key = "user:<id>", version = 2)]
//! pub async fn get_user(id: u64, trace: bool) -> Result<User, DbError> { .. }
//! ```
//!
//! Output, after the cached fn:
//!
//! ```text
//! #[doc = " Removes the entry that `get_user` cached for these arguments, ..."]
//! #[allow(dead_code)]
//! pub fn invalidate_get_user(id: u64, trace: bool) -> ::cachemacro_runtime::Invalidation {
//!     let _ = &trace;
//!     let __cache = ::cachemacro_runtime::__private::global_cache();
//!     let __key = { /* "user:", id, "@v2", as in the cached fn */ };
//!     ::cachemacro_runtime::__private::invalidation(__cache, __key)
//! }
//!
//! #[doc = " Reloads the entry of `get_user` for these arguments: ..."]
//! #[allow(dead_code)]
//! pub async fn refresh_get_user(id: u64, trace: bool) -> Result<User, DbError> {
//!     let __cache = ::cachemacro_runtime::__private::global_cache();
//!     let __key = { /* as above */ };
//!     let _ = ::cachemacro_runtime::__private::invalidation(__cache, __key).await;
//!     let __value = get_user(id, trace).await;
//!     __value
//! }
//! ```
//!
//! `invalidate_<name>` is a plain fn: it renders the key when called and returns the runtime's
//! `Invalidation`, a named future that owns the cache handle and the key, so that a crate pays for
//! no state machine per companion. `refresh_<name>` must hold the cached fn's future, whose type
//! only an `async fn` can name without spelling out the lifetimes its parameters elide.
//!
//! The companions keep the cached fn's signature (generics, where-clause, receiver, parameter
//! types, visibility), so they render its key from the same names. A default key starts with the
//! path of the function it is rendered in, less that function's name (`key.rs`): each companion
//! cuts its own name and then writes the cached fn's. Only bindings change: `mut`
//! and `ref` concern the body, which the companions do not have, and a destructuring pattern or
//! `_`, which no key can name, becomes a parameter `__argN` that is passed on as it is. Methods
//! call `Self::name(self, ..)`, which suits every receiver. They are `allow(dead_code)`: a
//! private cached fn need not use them. `#[cfg]` and `#[allow]` attributes of the cached fn are
//! repeated, so that the companions exist exactly when it does and lint alike.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::punctuated::Punctuated;
use syn::{FnArg, GenericParam, Ident, Pat, PatIdent, Token, Visibility};

use super::{bound, cache_init, key, local, private_path, runtime_path};
use crate::ast::{Body, Function};
use crate::attr::Args;

/// The companions of `func`; nothing with `companions = false` or for an `#[async_trait]` method,
/// whose trait impl can hold no other method.
pub(super) fn companions(args: &Args, func: &Function) -> TokenStream {
    if !args.companions() || matches!(func.body, Body::AsyncTrait { .. }) {
        return TokenStream::new();
    }
    let krate = runtime_path(args);
    let private = private_path(args);
    let cache = local("__cache");
    let key = local("__key");
    let name = &func.sig.ident;
    let cache_init = cache_init(args, &private);
    let params = Params::of(func);
    let unused = params.unused_by_key(args);
    let attrs = func
        .outer_attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg") || attr.path().is_ident("allow"));
    let attrs = quote!(#(#attrs)* #[allow(dead_code)]);
    let vis = &func.vis;

    let mut invalidate = func.sig.clone();
    invalidate.asyncness = None;
    invalidate.ident = format_ident!("invalidate_{}", name, span = name.span());
    invalidate.inputs = params.inputs.clone();
    invalidate.output = syn::parse_quote!(-> #krate::Invalidation);
    let invalidate_key = key::entry_key(args, func, &private, &cache, &invalidate.ident);
    let invalidate_doc = format!(
        " Removes the entry that `{name}` cached for these arguments, so that its next call runs \
         the body, when the returned future is awaited.\n\n Fails with the cache's error if the \
         entry could not be removed."
    );

    let (refresh_inputs, refresh_prelude, call) = params.refresh(func);
    let mut refresh = func.sig.clone();
    refresh.ident = format_ident!("refresh_{}", name, span = name.span());
    refresh.inputs = refresh_inputs;
    let refresh_key = key::entry_key(args, func, &private, &cache, &refresh.ident);
    let refresh_doc = format!(
        " Reloads the entry of `{name}` for these arguments: removes it, then calls `{name}`, \
         which runs the body and stores its result. A failure to remove the entry is ignored, \
         as `{name}` ignores the cache's failures."
    );

    let refreshed = bound(quote!(#call.await));
    let clear = clear(args, func, &private, &attrs, vis);
    quote! {
        #[doc = #invalidate_doc]
        #attrs
        #vis #invalidate {
            #(let _ = &#unused;)*
            let #cache = #cache_init;
            let #key = #invalidate_key;
            #private::invalidation(#cache, #key)
        }

        #[doc = #refresh_doc]
        #attrs
        #vis #refresh {
            #refresh_prelude
            let #cache = #cache_init;
            let #key = #refresh_key;
            let _ = #private::invalidation(#cache, #key).await;
            #refreshed
        }

        #clear
    }
}

/// `clear_<name>`: removes every entry of the function, whatever its arguments, from the cache
/// it is given (when `cache = ...` names one) or the global cache. A default key's entries start
/// with the function's path and then `(`, `[` or `<`; a template's with its text up to its first
/// placeholder. None for a `key = <expression>`, whose entries share nothing known.
fn clear(
    args: &Args,
    func: &Function,
    private: &TokenStream,
    attrs: &TokenStream,
    vis: &Visibility,
) -> TokenStream {
    if args.key_expr.is_some() {
        return TokenStream::new();
    }
    let krate = runtime_path(args);
    let name = &func.sig.ident;
    let ident = format_ident!("clear_{}", name, span = name.span());
    let cache = local("__cache");
    let prefixes = local("__prefixes");
    let (parameter, cache_init) = match &args.cache {
        Some(_) => (
            quote!(#cache: &#krate::Cache),
            quote!(#private::cache_handle(#cache)),
        ),
        None => (TokenStream::new(), quote!(#private::global_cache())),
    };
    let prefixes_init = match &args.key {
        Some(template) => {
            let literal: String = template
                .value
                .segments
                .iter()
                .map_while(|segment| match segment {
                    crate::template::Segment::Literal(text) => Some(text.as_str()),
                    crate::template::Segment::Placeholder(_) => None,
                })
                .collect();
            quote!(::std::vec![::std::borrow::ToOwned::to_owned(#literal)])
        }
        None => key::function_prefixes(args, func, private, &ident),
    };
    let doc = format!(
        " Removes every entry of `{name}`, whatever its arguments, and voids the loads of them \
         in flight, when the returned future is awaited; it resolves to the number of entries \
         removed. On Redis it walks the keys with `SCAN` and removes them with `UNLINK`."
    );
    quote! {
        #[doc = #doc]
        #attrs
        #vis fn #ident(#parameter) -> #krate::Clearing {
            let #cache = #cache_init;
            let #prefixes = #prefixes_init;
            #private::clearing(#cache, #prefixes)
        }
    }
}

/// The companions' parameters, and the names they go by.
struct Params {
    inputs: Punctuated<FnArg, Token![,]>,
    /// The name of each parameter but the receiver, in order.
    names: Vec<Ident>,
    has_receiver: bool,
}

impl Params {
    fn of(func: &Function) -> Self {
        let mut inputs = func.sig.inputs.clone();
        let mut names = Vec::new();
        let mut has_receiver = false;
        for (index, input) in inputs.iter_mut().enumerate() {
            match input {
                FnArg::Receiver(receiver) => {
                    has_receiver = true;
                    // `mut self`; in `&mut self` the `mut` belongs to the reference.
                    if receiver.reference.is_none() {
                        receiver.mutability = None;
                    }
                }
                FnArg::Typed(param) => {
                    let ident = match &*param.pat {
                        Pat::Ident(pat) => pat.ident.clone(),
                        _ => Ident::new(&format!("__arg{index}"), Span::mixed_site()),
                    };
                    *param.pat = Pat::Ident(PatIdent {
                        attrs: Vec::new(),
                        by_ref: None,
                        mutability: None,
                        ident: ident.clone(),
                        subpat: None,
                    });
                    names.push(ident);
                }
            }
        }
        Params {
            inputs,
            names,
            has_receiver,
        }
    }

    /// The parameters that neither the key nor the cache expression reads, which
    /// `invalidate_<name>` must still appear to use. Names starting with `_`, such as `__argN`,
    /// are never reported unused, so they are left out.
    fn unused_by_key(&self, args: &Args) -> Vec<&Ident> {
        let mentioned = args.cache_mentions();
        let key_expr_mentions = args.key_expr_mentions();
        self.names
            .iter()
            .filter(|ident| {
                // The default key reads every named parameter.
                let read_by_key = match (&args.key, &key_expr_mentions) {
                    (_, Some(mentions)) => mentions.contains(ident),
                    (Some(key), None) => key
                        .value
                        .placeholders()
                        .any(|placeholder| *ident == &placeholder.root),
                    (None, None) => true,
                };
                !read_by_key && !mentioned.contains(ident) && !ident.to_string().starts_with('_')
            })
            .collect()
    }

    /// The parameters of `refresh_<name>`, the statements its body starts with, and its call
    /// of the cached fn with its arguments: `name::<T, N>(a, b)`, `Self::name::<T, N>(a, b)` for
    /// an associated fn whose signature names `Self`, or `Self::name::<T, N>(self, a, b)`. Lifetimes are left to inference; they may be late-bound.
    ///
    /// A parameter named like a free cached fn would hide it from the call. It is then received
    /// as `__shadowed`, and bound to its name only after the fn is taken as `__function`.
    fn refresh(&self, func: &Function) -> (Punctuated<FnArg, Token![,]>, TokenStream, TokenStream) {
        let name = &func.sig.ident;
        let generics = func
            .sig
            .generics
            .params
            .iter()
            .filter_map(|param| match param {
                GenericParam::Type(param) => Some(&param.ident),
                GenericParam::Const(param) => Some(&param.ident),
                GenericParam::Lifetime(_) => None,
            });
        let generics: Vec<&Ident> = generics.collect();
        let turbofish = (!generics.is_empty()).then(|| quote!(::<#(#generics),*>));
        let names = &self.names;
        if self.has_receiver {
            let call = quote!(Self::#name #turbofish(self, #(#names),*));
            return (self.inputs.clone(), TokenStream::new(), call);
        }
        // In an impl: nothing but `Self::` names an associated fn there.
        if func.names_self() {
            let call = quote!(Self::#name #turbofish(#(#names),*));
            return (self.inputs.clone(), TokenStream::new(), call);
        }
        let Some(shadowing) = names.iter().find(|param| *param == name) else {
            let call = quote!(#name #turbofish(#(#names),*));
            return (self.inputs.clone(), TokenStream::new(), call);
        };
        let function = local("__function");
        let shadowed = local("__shadowed");
        let mut inputs = self.inputs.clone();
        for input in &mut inputs {
            if let FnArg::Typed(param) = input {
                if let Pat::Ident(pat) = &mut *param.pat {
                    if pat.ident == *name {
                        pat.ident = shadowed.clone();
                    }
                }
            }
        }
        let prelude = quote! {
            let #function = #name #turbofish;
            let #shadowing = #shadowed;
        };
        (inputs, prelude, quote!(#function(#(#names),*)))
    }
}

/// Whether `func` may be a method of a trait impl: an `async fn` without visibility (a trait
/// impl's methods have none) that takes `self` or names `Self`. `#[cached]` sees the fn, not the
/// impl around it, so it cannot tell such a method from a private method of an inherent impl.
pub(super) fn may_be_in_trait_impl(func: &Function) -> bool {
    matches!(func.body, Body::Async(_))
        && matches!(func.vis, Visibility::Inherited)
        && func.names_self()
}

/// In the body of a method that may be in a trait impl (`may_be_in_trait_impl`), a trait
/// providing the names the expansion adds to the impl, whose every fn requires what nothing
/// implements: `CompanionsInTraitImpl`, whose message asks for `companions = false`.
///
/// The expansion cannot tell a private method of an inherent impl, where companions are wanted,
/// from a method of a trait impl, where they are errors: a trait impl holds only the trait's
/// items. It emits them in both, and rustc reports each one that a trait impl cannot hold
/// (E0407, "method `invalidate_get` is not a member of trait `Repo`"); no expansion avoids that.
/// This trait changes the rest: `Self::invalidate_get` and the calls of the sibling fns resolve
/// to the inherent items when there are some, and to this trait's otherwise, so that in a trait
/// impl they report one error that says what to do, where the calls of the missing sibling fns
/// reported "no associated item named `__cachemacro_body_get`". In a trait definition the
/// companions are provided methods, which the bound `Self: Trait` finds before any trait in
/// scope.
///
/// `lending` is the number of arguments of the sibling fns when the body moved into them: their
/// calls then raise the error; otherwise a statement naming `invalidate_<name>` does. Nothing
/// for a function that cannot be in a trait impl, or without companions.
pub(super) fn trait_impl_guard(
    args: &Args,
    func: &Function,
    private: &TokenStream,
    lending: Option<usize>,
) -> TokenStream {
    if !args.companions() || !may_be_in_trait_impl(func) {
        return TokenStream::new();
    }
    // Spanned at the attribute, where `companions = false` goes, as rustc's errors about the
    // companions are.
    let requirement = quote!(where Self: #private::CompanionsInTraitImpl);
    let invalidate = format_ident!("invalidate_{}", func.sig.ident);
    let generics: Vec<&GenericParam> = func
        .sig
        .generics
        .params
        .iter()
        .filter(|param| !matches!(param, GenericParam::Lifetime(_)))
        .collect();
    // The parameters of `invalidate_<name>`, without bounds: only their number and kinds count.
    let declared = generics.iter().map(|param| match param {
        GenericParam::Const(param) => {
            let (ident, ty) = (&param.ident, &param.ty);
            quote!(const #ident: #ty)
        }
        param => param_name(param).to_token_stream(),
    });
    let names = generics.iter().map(|param| param_name(param));
    let turbofish = (!generics.is_empty()).then(|| quote!(::<#(#names),*>));
    let (siblings, probe) = match lending {
        Some(arity) => {
            let (body, held) = super::lending::sibling_names(func);
            let siblings = [body, held]
                .iter()
                .map(|sibling| sibling_stand_in(sibling, arity, &requirement))
                .collect();
            (siblings, TokenStream::new())
        }
        None => (
            TokenStream::new(),
            quote!(let _ = Self::#invalidate #turbofish;),
        ),
    };
    let invalidate = quote!(fn #invalidate<#(#declared),*>() #requirement {});
    let stand_ins = stand_ins(quote!(#invalidate #siblings));
    quote!(#stand_ins #probe)
}

/// In the sibling fn that lends the body its arguments, a trait providing the body's name
/// (`__cachemacro_body_<name>`) with nothing required: in a trait impl, where the call of the
/// body in that fn would otherwise report that it does not exist, it resolves to this one, and
/// `trait_impl_guard` in the cached fn has said what to do.
pub(super) fn held_guard(func: &Function, arity: usize) -> TokenStream {
    if !may_be_in_trait_impl(func) {
        return TokenStream::new();
    }
    let (body, _) = super::lending::sibling_names(func);
    stand_ins(sibling_stand_in(&body, arity, &TokenStream::new()))
}

/// `fn #name<A0, .., O>(_: A0, ..) -> Pending<O> #requirement`: takes whatever a call of the
/// sibling fn `name` passes, and gives a future of what it awaits.
fn sibling_stand_in(name: &Ident, arity: usize, requirement: &TokenStream) -> TokenStream {
    let params: Vec<Ident> = (0..arity)
        .map(|index| Ident::new(&format!("__A{index}"), Span::mixed_site()))
        .collect();
    let output = Ident::new("__Output", Span::mixed_site());
    quote! {
        fn #name<#(#params,)* #output>(#(_: #params),*) -> ::core::future::Pending<#output>
        #requirement
        {
            ::core::future::pending()
        }
    }
}

/// A trait of a body's own holding `fns`, implemented for every type: where `Self` has no
/// inherent fn of one of these names, `Self::name` resolves to this trait's.
fn stand_ins(fns: TokenStream) -> TokenStream {
    let stand_ins = Ident::new("__CachemacroStandIns", Span::mixed_site());
    let any = Ident::new("__CachemacroAny", Span::mixed_site());
    quote! {
        #[allow(dead_code, clippy::all)]
        trait #stand_ins {
            #fns
        }
        impl<#any: ?::core::marker::Sized> #stand_ins for #any {}
    }
}

fn param_name(param: &GenericParam) -> &Ident {
    match param {
        GenericParam::Type(param) => &param.ident,
        GenericParam::Const(param) => &param.ident,
        GenericParam::Lifetime(param) => &param.lifetime.ident,
    }
}

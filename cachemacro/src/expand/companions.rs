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
//! pub async fn invalidate_get_user(id: u64, trace: bool) -> ::cachemacro_runtime::Result<()> {
//!     let _ = &trace;
//!     let __cache = ::cachemacro_runtime::__private::global_cache();
//!     let __key = { /* "user:", id, "@v2", as in the cached fn */ };
//!     let __value = ::cachemacro_runtime::__private::invalidate_key(&__cache, &__key).await;
//!     __value
//! }
//!
//! #[doc = " Reloads the entry of `get_user` for these arguments: ..."]
//! #[allow(dead_code)]
//! pub async fn refresh_get_user(id: u64, trace: bool) -> Result<User, DbError> {
//!     let __cache = ::cachemacro_runtime::__private::global_cache();
//!     let __key = { /* as above */ };
//!     let _ = ::cachemacro_runtime::__private::invalidate_key(&__cache, &__key).await;
//!     let __value = get_user(id, trace).await;
//!     __value
//! }
//! ```
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
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::{FnArg, GenericParam, Ident, Pat, PatIdent, Token};

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
    invalidate.ident = format_ident!("invalidate_{}", name, span = name.span());
    invalidate.inputs = params.inputs.clone();
    invalidate.output = syn::parse_quote!(-> #krate::Result<()>);
    let invalidate_key = key::entry_key(args, func, &private, &cache, &invalidate.ident);
    let invalidate_doc = format!(
        " Removes the entry that `{name}` cached for these arguments, so that its next call runs \
         the body.\n\n Fails with the cache's error if the entry could not be removed."
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

    let invalidated = bound(quote!(#private::invalidate_key(&#cache, &#key).await));
    let refreshed = bound(quote!(#call.await));
    quote! {
        #[doc = #invalidate_doc]
        #attrs
        #vis #invalidate {
            #(let _ = &#unused;)*
            let #cache = #cache_init;
            let #key = #invalidate_key;
            #invalidated
        }

        #[doc = #refresh_doc]
        #attrs
        #vis #refresh {
            #refresh_prelude
            let #cache = #cache_init;
            let #key = #refresh_key;
            let _ = #private::invalidate_key(&#cache, &#key).await;
            #refreshed
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
        self.names
            .iter()
            .filter(|ident| {
                // The default key reads every named parameter.
                let read_by_key = args.key.as_ref().is_none_or(|key| {
                    key.value
                        .placeholders()
                        .any(|placeholder| *ident == &placeholder.root)
                });
                !read_by_key && !mentioned.contains(ident) && !ident.to_string().starts_with('_')
            })
            .collect()
    }

    /// The parameters of `refresh_<name>`, the statements its body starts with, and its call
    /// of the cached fn with its arguments: `name::<T, N>(a, b)` or
    /// `Self::name::<T, N>(self, a, b)`. Lifetimes are left to inference; they may be late-bound.
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

//! The loader of a function that borrows (`&self`, `&str`, `&Cache`) and refreshes: its body
//! moves into a sibling fn, so that a refresh can run it on owned copies of what it borrows.
//!
//! Input:
//!
//! ```text
//! #[cached(stale = "1m")]
//! pub async fn name(&self, prefix: &str, mut id: u64) -> String { .. }
//! ```
//!
//! Output, in place of the function:
//!
//! ```text
//! pub async fn name(&self, prefix: &str, id: u64) -> String {
//!     /* policy, cache, key and tags, as for any cached fn */
//!     let mut __loader = {
//!         use ::cachemacro_runtime::__private::{EraseLending as _, KeepLending as _};
//!         let __lending = ::cachemacro_runtime::__private::Lending::new(
//!             (id,),
//!             move |(id,)| Self::__cachemacro_body_name(self, prefix, id),
//!             move |(id,)| {
//!                 use ::cachemacro_runtime::__private::{HoldBorrowed as _, HoldOwned as _, ..};
//!                 let __held0 = (&::cachemacro_runtime::__private::HoldProbe(self)).hold();
//!                 let __held1 = (&::cachemacro_runtime::__private::HoldProbe(prefix)).hold();
//!                 let __marks = (mark(&__held0), (mark(&__held1), ()));
//!                 let __load = Self::__cachemacro_held_name(__held0, __held1, id);
//!                 (&DetachProbe::<_, _, PlainMode>::of(&__load, &__marks)).route()(__load)
//!             },
//!         );
//!         (&::cachemacro_runtime::__private::probe_lending(&__lending)).erase()(__lending)
//!     };
//!     let __value = ::cachemacro_runtime::__private::cached_value(&__cache, &__key, &__tags, &__POLICY,
//!         __loader.as_loader(), /* sharing, failure */)
//!     .await;
//!     __value
//! }
//!
//! #[doc(hidden)]
//! async fn __cachemacro_body_name(&self, prefix: &str, mut id: u64) -> String {
//!     let _ = &prefix;
//!     let _ = &id;
//!     { /* the user's block, in braces of the expansion's context (`nested_block`) */ }
//! }
//!
//! #[doc(hidden)]
//! async fn __cachemacro_held_name<__CachemacroHeld0: Lend<Self>, __CachemacroHeld1: Lend<str>>(
//!     __held0: __CachemacroHeld0, __held1: __CachemacroHeld1, id: u64,
//! ) -> String {
//!     let __value = Self::__cachemacro_body_name(Lend::lend(&__held0), Lend::lend(&__held1), id)
//!         .await;
//!     __value
//! }
//! ```
//!
//! A call's own load runs the body on the caller's borrows. A refresh asks the runtime's probes
//! (`lend.rs`) for holders and a route: with every borrowed argument owned and a `Send` body, it
//! runs in a background task; otherwise in the caller's, as before. A last probe looks at the
//! futures of both siblings: when they are `Send`, the loader is served with its type erased,
//! so that the function compiles little more than its body (see `loader.rs` in the runtime). The owned arguments are
//! handed to exactly one of the two closures, so that neither is cloned. The body keeps the
//! user's parameters, `mut` included, and reads each one, so that one read only by the key
//! raises no warning; the cached fn loses the `mut`s, which its body no longer uses.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Block, FnArg, Ident, Pat, Signature};

use super::{bound, local, nested_block};
use crate::ast::{Function, Lendable, Returns};

/// The loader expression, the cached fn's signature and the two sibling fns.
pub(super) struct Lending {
    pub loader: TokenStream,
    pub signature: Signature,
    pub siblings: TokenStream,
    /// How many arguments each sibling takes.
    pub arity: usize,
}

/// The names of the two sibling fns of `func`: the body and the fn that lends it its arguments.
pub(super) fn sibling_names(func: &Function) -> (Ident, Ident) {
    let name = &func.sig.ident;
    (
        format_ident!("__cachemacro_body_{}", name),
        format_ident!("__cachemacro_held_{}", name),
    )
}

pub(super) fn lending(
    func: &Function,
    block: &Block,
    params: &[Lendable<'_>],
    private: &TokenStream,
) -> Lending {
    let (body_fn, held_fn) = sibling_names(func);
    // The siblings sit beside the fn: in an impl when it can name `Self`, so they are reached
    // through it.
    let path = if func.names_self() {
        quote!(Self::)
    } else {
        TokenStream::new()
    };
    let mode = match func.returns {
        Returns::Result => quote!(ResultMode),
        Returns::Option => quote!(OptionMode),
        Returns::Plain => quote!(PlainMode),
    };

    let owned: Vec<&Ident> = params
        .iter()
        .filter_map(|param| match param {
            Lendable::Owned { name, .. } => Some(*name),
            _ => None,
        })
        .collect();
    let args = quote!((#(#owned,)*));
    let direct_args = params.iter().map(|param| match param {
        Lendable::Receiver => quote!(self),
        Lendable::Borrowed { name, .. } | Lendable::Owned { name, .. } => quote!(#name),
    });

    let mut holders = Vec::new();
    let mut holder_types = Vec::new();
    let mut held_inputs = Vec::new();
    let mut lent_args = Vec::new();
    let mut held_args = Vec::new();
    for param in params {
        let (borrowed, referent) = match param {
            Lendable::Receiver => (quote!(self), quote!(Self)),
            Lendable::Borrowed { name, referent } => (quote!(#name), quote!(#referent)),
            Lendable::Owned { name, ty } => {
                held_inputs.push(quote!(#name: #ty));
                lent_args.push(quote!(#name));
                held_args.push(quote!(#name));
                continue;
            }
        };
        let index = holders.len();
        let holder = local(&format!("__held{index}"));
        let holder_type = Ident::new(&format!("__CachemacroHeld{index}"), Span::call_site());
        held_inputs.push(quote!(#holder: #holder_type));
        lent_args.push(quote!(#private::Lend::lend(&#holder)));
        held_args.push(quote!(#holder));
        holder_types.push(quote!(#holder_type: #private::Lend<#referent>));
        holders.push((holder, borrowed));
    }
    let hold = holders
        .iter()
        .map(|(holder, borrowed)| quote!(let #holder = (&#private::HoldProbe(#borrowed)).hold();));
    let marks = holders.iter().rev().fold(
        quote!(()),
        |rest, (holder, _)| quote!((#private::mark(&#holder), #rest)),
    );
    let load = local("__load");
    let marks_local = local("__marks");
    let lending = local("__lending");
    let loader = quote! {{
        use #private::{EraseLending as _, KeepLending as _};
        let #lending = #private::Lending::new(
            #args,
            move |#args| #path #body_fn(#(#direct_args),*),
            move |#args| {
                use #private::{HoldBorrowed as _, HoldOwned as _, RouteDetached as _, RouteInCaller as _};
                #(#hold)*
                let #marks_local = #marks;
                let #load = #path #held_fn(#(#held_args),*);
                (&#private::DetachProbe::<_, _, #private::#mode>::of(&#load, &#marks_local)).route()(#load)
            },
        );
        (&#private::probe_lending(&#lending)).erase()(#lending)
    }};

    let output = &func.output;
    let attrs = func
        .outer_attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg") || attr.path().is_ident("allow"));
    let attrs = quote! {
        #(#attrs)*
        #[doc(hidden)]
        #[allow(dead_code, clippy::too_many_arguments)]
    };
    let mut body_sig = func.sig.clone();
    body_sig.ident = body_fn.clone();
    let inner_attrs = &func.inner_attrs;
    let block = nested_block(block);
    let read = params.iter().filter_map(|param| match param {
        Lendable::Receiver => None,
        Lendable::Borrowed { name, .. } | Lendable::Owned { name, .. } => Some(name),
    });
    let lent = bound(quote!(#path #body_fn(#(#lent_args),*).await));
    let guard = super::companions::held_guard(func, params.len());
    let siblings = quote! {
        #attrs
        #body_sig {
            #(#inner_attrs)*
            #(let _ = &#read;)*
            #block
        }

        #attrs
        async fn #held_fn<#(#holder_types),*>(#(#held_inputs),*) -> #output {
            #guard
            #lent
        }
    };

    let mut signature = func.sig.clone();
    for input in &mut signature.inputs {
        if let FnArg::Typed(param) = input {
            if let Pat::Ident(pat) = &mut *param.pat {
                pat.mutability = None;
            }
        }
    }
    Lending {
        loader,
        signature,
        siblings,
        arity: params.len(),
    }
}

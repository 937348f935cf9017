//! Rendering keys and tags: from a template, or for `#[cached]` without `key`, from the
//! function's path and parameters.
//!
//! Each rendering is a block that evaluates to a `String`:
//!
//! ```text
//! {
//!     let mut __builder = ::cachemacro_runtime::__private::key_builder(&__cache, 32);
//!     __builder.literal("user:");
//!     __builder.value(&id);
//!     __builder.literal("@v2");
//!     __builder.finish()
//! }
//! ```
//!
//! Keys start with the cache's prefix (`key_builder`); tags do not (`tag_builder`), so that one
//! tag names the same entries whatever prefix the caches that wrote them had.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, LitStr};

use crate::ast::{Binding, Function};
use crate::attr::Args;
use crate::template::{Segment, Template};

/// Bytes reserved in a key for each rendered value, on top of the literal text.
const VALUE_CAPACITY: usize = 16;

/// What a rendered string starts with.
#[derive(Clone, Copy)]
pub(super) enum Start<'a> {
    /// A key: the prefix of the cache held in this local.
    CachePrefix(&'a Ident),
    /// A tag: nothing.
    Empty,
}

/// The key of the entry a function reads or writes: its `key` template or else the default key,
/// then the `version` suffix.
pub(super) fn entry_key(
    args: &Args,
    func: &Function,
    private: &TokenStream,
    cache: &Ident,
) -> TokenStream {
    let start = Start::CachePrefix(cache);
    let suffix = version_suffix(args);
    match &args.key {
        Some(template) => render(&template.value, private, start, suffix.as_deref()),
        None => default_key(args, func, private, cache, suffix.as_deref()),
    }
}

/// Each `tags` template rendered, in order; none without `tags`.
pub(super) fn tags(args: &Args, private: &TokenStream) -> Vec<TokenStream> {
    let templates = args.tags.iter().flat_map(|tags| &tags.value);
    templates
        .map(|template| render(template, private, Start::Empty, None))
        .collect()
}

/// `@v2` for `version = 2`.
fn version_suffix(args: &Args) -> Option<String> {
    args.version
        .as_ref()
        .map(|version| format!("@v{}", version.value))
}

/// A template rendered after `start` and followed by `suffix`. Values are spanned at the
/// template, so a placeholder whose value is not `Display` is reported there.
pub(super) fn render(
    template: &Template,
    private: &TokenStream,
    start: Start,
    suffix: Option<&str>,
) -> TokenStream {
    let span = template.span;
    let builder = builder_ident();
    let mut capacity = 0;
    let mut pushes: Vec<TokenStream> = template
        .segments
        .iter()
        .map(|segment| match segment {
            Segment::Literal(text) => {
                capacity += text.len();
                let text = LitStr::new(text, span);
                quote!(#builder.literal(#text);)
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
                quote_spanned!(span=> #builder.value(&#root #(.#fields)*);)
            }
        })
        .collect();
    if let Some(suffix) = suffix {
        capacity += suffix.len();
        pushes.push(quote!(#builder.literal(#suffix);));
    }
    build(private, start, capacity, &pushes)
}

/// The key without a template: the function's path, then each parameter that is neither `self`
/// nor named in the `cache` expression, all separated by `:`. Each value is spanned at its
/// parameter, so one that is not `Display` is reported there.
fn default_key(
    args: &Args,
    func: &Function,
    private: &TokenStream,
    cache: &Ident,
    suffix: Option<&str>,
) -> TokenStream {
    let builder = builder_ident();
    let name = func.sig.ident.to_string();
    let name = LitStr::new(name.trim_start_matches("r#"), func.sig.ident.span());
    let mut pushes = vec![quote! {
        #builder.literal(::core::concat!(::core::module_path!(), "::", #name));
    }];
    let mentioned = args.cache_mentions();
    for (param, binding) in func.default_key_params(&mentioned) {
        if let Binding::Named(ident) = binding {
            pushes.push(quote_spanned! {param.span()=>
                #builder.literal(":");
                #builder.value(&#ident);
            });
        }
    }
    // Room for a module path, the name and each value.
    let mut capacity = 32 + name.value().len() + pushes.len() * (1 + VALUE_CAPACITY);
    if let Some(suffix) = suffix {
        capacity += suffix.len();
        pushes.push(quote!(#builder.literal(#suffix);));
    }
    build(private, Start::CachePrefix(cache), capacity, &pushes)
}

fn build(
    private: &TokenStream,
    start: Start,
    capacity: usize,
    pushes: &[TokenStream],
) -> TokenStream {
    let builder = builder_ident();
    let capacity = Literal::usize_unsuffixed(capacity.next_power_of_two());
    let new_builder = match start {
        Start::CachePrefix(cache) => quote!(#private::key_builder(&#cache, #capacity)),
        Start::Empty => quote!(#private::tag_builder(#capacity)),
    };
    quote! {{
        let mut #builder = #new_builder;
        #(#pushes)*
        #builder.finish()
    }}
}

/// The builder's local, out of reach of the user's code.
fn builder_ident() -> Ident {
    Ident::new("__builder", Span::mixed_site())
}

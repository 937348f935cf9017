//! Rendering keys and tags: from a template, or for `#[cached]` without `key`, from the
//! function's path and parameters.
//!
//! Each rendering is a block that evaluates to a `Key`, which holds a short key inline, so that
//! rendering the key of a hit allocates nothing:
//!
//! ```text
//! {
//!     let mut __builder = ::cachemacro_runtime::__private::key_builder(&__cache, 32);
//!     __builder.literal("user:");
//!     __builder.integer(id);
//!     __builder.literal("@v2");
//!     __builder.finish()
//! }
//! ```
//!
//! Keys start with the cache's prefix (`key_builder`); tags do not (`tag_builder`), so that one
//! tag names the same entries whatever prefix the caches that wrote them had. A cached function
//! or a write-through renders each tag as the key of its epoch (`epoch_key_builder`: the prefix,
//! `tag#`, then the tag), which is what a hit reads; the runtime takes the tag's name from its
//! tail, so a hit renders nothing else.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, LitStr};

use crate::ast::{names_integer, Binding, Function, KeyGeneric};
use crate::attr::Args;
use crate::template::{Segment, Template};

/// Bytes reserved in a key for each rendered value, on top of the literal text.
const VALUE_CAPACITY: usize = 16;

/// What a rendered string starts with.
#[derive(Clone, Copy)]
pub(super) enum Start<'a> {
    /// A key: the prefix of the cache held in this local.
    CachePrefix(&'a Ident),
    /// The key of a tag's epoch in the cache held in this local: its prefix and the epoch's
    /// mark. The runtime reads the tag's name from its tail.
    EpochOf(&'a Ident),
    /// A tag by name: nothing.
    Empty,
}

/// The key of the entry a function reads or writes: its `key` template or else the default key,
/// then the `version` suffix. `enclosing` is the function whose body the key is rendered in:
/// the function itself or one of its companions.
pub(super) fn entry_key(
    args: &Args,
    func: &Function,
    private: &TokenStream,
    cache: &Ident,
    enclosing: &Ident,
) -> TokenStream {
    let start = Start::CachePrefix(cache);
    let suffix = version_suffix(args);
    if let Some(expr) = &args.key_expr {
        return expression_key(&expr.value, private, cache, suffix.as_deref());
    }
    match &args.key {
        Some(template) => render(&template.value, func, private, start, suffix.as_deref()),
        None => default_key(args, func, private, cache, enclosing, suffix.as_deref()),
    }
}

/// A `key = <expression>`: the cache's prefix, the expression's string as it is (an
/// `AsRef<str>`, spanned at the expression so that another type is reported there), then the
/// version suffix. Unlike a template it escapes nothing: `key_parts!` builds a key that does.
fn expression_key(
    expr: &syn::Expr,
    private: &TokenStream,
    cache: &Ident,
    suffix: Option<&str>,
) -> TokenStream {
    let builder = builder_ident();
    let text = quote_spanned!(expr.span()=> ::core::convert::AsRef::<str>::as_ref(&(#expr)));
    let mut pushes = vec![quote!(#builder.literal(#text);)];
    if let Some(suffix) = suffix {
        pushes.push(quote!(#builder.literal(#suffix);));
    }
    build(private, Start::CachePrefix(cache), 64, &pushes)
}

/// Each `tags` template rendered after `start`, in order; none without `tags`.
pub(super) fn tags(
    args: &Args,
    func: &Function,
    private: &TokenStream,
    start: Start,
) -> Vec<TokenStream> {
    let templates = args.tags.iter().flat_map(|tags| &tags.value);
    templates
        .map(|template| render(template, func, private, start, None))
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
///
/// A placeholder with fields, `<user.id>`, reads them through a local:
/// `let __root = &user; __builder.value(&(*__root).id);`, where every token but `user` has a
/// mixed-site span located at the template. A misspelled field is then reported by rustc as
/// "no field `idd` on type `&User`" at the template, without the fix it would otherwise suggest:
/// a field with a similar name written over the whole template (`key = id`), since a span
/// cannot point inside a string literal. The local keeps the access in one context, or the
/// error about a field value that is not `Display` would point at the whole attribute.
pub(super) fn render(
    template: &Template,
    func: &Function,
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
                if placeholder.fields.is_empty() && func.is_integer_param(&placeholder.root) {
                    return quote_spanned!(span=> #builder.integer(#root););
                }
                if placeholder.fields.is_empty() {
                    return quote_spanned!(span=> #builder.value(&#root););
                }
                // Fields are read through a local, so that every token of the access has the
                // expansion's context: see `render`.
                let inside = Span::mixed_site().located_at(span);
                let value = Ident::new("__root", inside);
                let fields = placeholder
                    .fields
                    .iter()
                    .map(|field| match field.parse::<u32>() {
                        Ok(index) => syn::Index {
                            index,
                            span: inside,
                        }
                        .into_token_stream(),
                        Err(_) => Ident::new(field, inside).into_token_stream(),
                    });
                quote_spanned! {inside=>
                    let #value = &#root;
                    #builder.value(&(*#value) #(.#fields)*);
                }
            }
        })
        .collect();
    if let Some(suffix) = suffix {
        capacity += suffix.len();
        pushes.push(quote!(#builder.literal(#suffix);));
    }
    build(private, start, capacity, &pushes)
}

/// The key without a template: the function's name as the compiler resolves it, then what tells
/// its instances apart, then its arguments:
///
/// ```text
/// app::Repo%3C_%3E::get[app::Repo%3Cu8%3E]<alloc::string::String,3>(7,ada)@v2
/// ^ scope            ^ fn ^ Self, unless    ^ type and const          ^ args  ^ version
///                         it is the scope   parameters
/// ```
///
/// Paths and type names keep their `:` (`KeyBuilder::path`) and escape everything else that is
/// not plain, values keep nothing but plain bytes (`KeyBuilder::value`); so the function's
/// name ends at the first of `[`, `<` or `(`, and `(` always comes. Two functions therefore
/// share no key, whatever their arguments. Within one function the parts are fixed in number
/// and each is closed by a byte that none of them contains.
///
/// The scope is cut from the type name of an item declared in the body that renders the key:
/// `enclosing`, the cached function itself or one of its companions. It holds the module, any
/// function the cached one is nested in, and the impl or trait it belongs to, with the impl's
/// own generic parameters left as `_`: the Self type fills them in where `Self` can be
/// written. Parameters that are neither `self`, `_` nor named in the `cache` expression are
/// rendered in order, each spanned at its parameter, so one that is not `Display` is reported
/// there.
fn default_key(
    args: &Args,
    func: &Function,
    private: &TokenStream,
    cache: &Ident,
    enclosing: &Ident,
    suffix: Option<&str>,
) -> TokenStream {
    let builder = builder_ident();
    let marker = Ident::new("__cachemacro_scope", Span::mixed_site());
    let scope = Ident::new("__scope", Span::mixed_site());
    let enclosing = LitStr::new(&unraw(enclosing), enclosing.span());
    let name = LitStr::new(
        &format!("::{}", unraw(&func.sig.ident)),
        func.sig.ident.span(),
    );
    // `name = "..."` stands for the scope and the fn's name: the key survives a move or rename.
    let given = args.name.as_ref().map(|name| &name.value);
    let mut pushes = vec![match given {
        Some(given) => quote!(#builder.path(#given);),
        None => quote! {
            #builder.path(#scope);
            #builder.path(#name);
        },
    }];
    if func.names_self() {
        let self_type = Ident::new("__self_type", Span::mixed_site());
        // A type that is its own scope (an inherent impl in the type's module) would only
        // repeat it.
        let push_self = quote! {
            #builder.literal("[");
            #builder.path(#self_type);
            #builder.literal("]");
        };
        pushes.push(match given {
            Some(_) => quote! {
                let #self_type = ::core::any::type_name::<Self>();
                #push_self
            },
            None => quote! {
                let #self_type = ::core::any::type_name::<Self>();
                if #self_type != #scope {
                    #push_self
                }
            },
        });
    }
    let generics: Vec<TokenStream> = func
        .key_generics()
        .map(|generic| match generic {
            KeyGeneric::Type(ident) => {
                quote!(#builder.path(::core::any::type_name::<#ident>());)
            }
            KeyGeneric::Const(ident) => quote!(#builder.value(&#ident);),
        })
        .collect();
    let generic_count = generics.len();
    if !generics.is_empty() {
        pushes.push(quote!(#builder.literal("<");));
        pushes.push(separated(generics));
        pushes.push(quote!(#builder.literal(">");));
    }
    let mentioned = args.cache_mentions();
    let values: Vec<TokenStream> = func
        .default_key_params(&mentioned)
        .filter_map(|(param, binding)| match binding {
            Binding::Named(ident) if names_integer(param).is_some() => {
                Some(quote_spanned!(param.span()=> #builder.integer(#ident);))
            }
            Binding::Named(ident) => Some(quote_spanned!(param.span()=> #builder.value(&#ident);)),
            Binding::Pattern(_) => None,
        })
        .collect();
    let value_count = values.len();
    pushes.push(quote!(#builder.literal("(");));
    pushes.push(separated(values));
    pushes.push(quote!(#builder.literal(")");));
    // Room for a scope, the name, a Self type and each generic and value.
    let mut capacity =
        48 + name.value().len() + (generic_count + value_count) * (1 + VALUE_CAPACITY);
    if let Some(suffix) = suffix {
        capacity += suffix.len();
        pushes.push(quote!(#builder.literal(#suffix);));
    }
    let key = build(private, Start::CachePrefix(cache), capacity, &pushes);
    if given.is_some() {
        return key;
    }
    // The marker comes first: an item after statements reads as misplaced to some lints.
    quote! {{
        fn #marker() {}
        let #scope = #private::scope(::core::any::type_name_of_val(&#marker), #enclosing);
        #key
    }}
}

/// What every default key of `func` starts with: its path (or `name`), then `(`, `[` or `<`,
/// without the cache's prefix, as a `Vec<String>` of the three. `enclosing` is the fn the
/// prefixes are rendered in.
pub(super) fn function_prefixes(
    args: &Args,
    func: &Function,
    private: &TokenStream,
    enclosing: &Ident,
) -> TokenStream {
    let builder = builder_ident();
    let name = LitStr::new(
        &format!("::{}", unraw(&func.sig.ident)),
        func.sig.ident.span(),
    );
    let base = Ident::new("__base", Span::mixed_site());
    let path = match args.name.as_ref().map(|name| &name.value) {
        Some(given) => quote! {
            let mut #builder = #private::tag_builder(64);
            #builder.path(#given);
        },
        None => {
            let marker = Ident::new("__cachemacro_scope", Span::mixed_site());
            let scope = Ident::new("__scope", Span::mixed_site());
            let enclosing = LitStr::new(&unraw(enclosing), enclosing.span());
            // The marker comes first: an item after statements reads as misplaced to some lints.
            quote! {
                fn #marker() {}
                let #scope = #private::scope(::core::any::type_name_of_val(&#marker), #enclosing);
                let mut #builder = #private::tag_builder(64);
                #builder.path(#scope);
                #builder.path(#name);
            }
        }
    };
    quote! {{
        let #base = {
            #path
            #builder.finish()
        };
        ::std::vec![
            [&*#base, "("].concat(),
            [&*#base, "["].concat(),
            [&*#base, "<"].concat(),
        ]
    }}
}

/// `pushes` with a `,` between each two.
fn separated(pushes: Vec<TokenStream>) -> TokenStream {
    let builder = builder_ident();
    let mut joined = TokenStream::new();
    for (index, push) in pushes.into_iter().enumerate() {
        if index > 0 {
            joined.extend(quote!(#builder.literal(",");));
        }
        joined.extend(push);
    }
    joined
}

/// The name of `ident` as the compiler prints it in a path: without `r#`.
pub(super) fn unraw(ident: &Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#")
        .map_or_else(|| name.clone(), str::to_owned)
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
        Start::EpochOf(cache) => quote!(#private::epoch_key_builder(&#cache, #capacity)),
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

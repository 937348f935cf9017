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
//         let _ = ::cachemacro_runtime::__private::assert_cacheable::<User>;
//         static __CACHEMACRO_POLICY: ::cachemacro_runtime::__private::Policy =
//             ::cachemacro_runtime::__private::Policy::new()
//                 .ttl(::core::time::Duration::from_millis(3600000))
//                 .stale(::core::time::Duration::from_millis(600000));
//         let __cache = ::cachemacro_runtime::__private::global_cache();
//         let __key = {
//             let mut __builder = ::cachemacro_runtime::__private::key_builder(&__cache, 32);
//             __builder.literal("user:");
//             __builder.integer(id);
//             __builder.finish()
//         };
//         let __tags: [::cachemacro_runtime::__private::Key; 0] = [];
//         let mut __loader = ::cachemacro_runtime::__private::Detached::new(move || async move {
//             if false {
//                 let __cachemacro_fake_return: Result<User, DbError> = loop {};
//                 return __cachemacro_fake_return;
//             }
//             {
//                 db::load_user(id).await
//             }
//         });
//         let __value = ::cachemacro_runtime::__private::cached_result::<User, _, _>(
//             &__cache,
//             &__key,
//             &__tags,
//             &__CACHEMACRO_POLICY,
//             __loader.as_loader(),
//             {
//                 use ::cachemacro_runtime::__private::{ShareByClone as _, ShareNothing as _};
//                 (&::cachemacro_runtime::__private::SharingProbe::<Result<User, DbError>>::new())
//                     .sharing()
//             },
//             {
//                 use ::cachemacro_runtime::__private::{FailByError as _, FailNever as _};
//                 (&::cachemacro_runtime::__private::FailureProbe::<Result<User, DbError>>::new())
//                     .failure()
//             },
//         )
//         .await;
//         __value
//     }
//     // + `invalidate_get_user` and `refresh_get_user`, see `companions.rs`.
//
// The signature, attributes and block are the user's tokens, so their spans survive. The fake
// early return gives the loader block its type up front: a mismatch is then reported inside the
// user's block rather than at the attribute.
//
// `User`, the type the cache stores, is asserted to be `Cacheable` first: a type that is not is
// reported once, at the return type, and the runtime call is spanned so that rustc drops its own
// errors about the same bounds (`runtime_call`). A method without visibility, which may be in a
// trait impl, also starts with stand-ins for the names the expansion adds to the impl
// (`companions::trait_impl_guard`).
//
// No lint may reach the user from what the expansion adds, so the user's code is linted as the
// user wrote it and nothing else is. Tokens the expansion writes have call-site or mixed-site
// spans, which lints take for a macro's own code. Two places need care: the user's block nested
// in the loader keeps its statements' spans but gets braces spanned in the expansion's context
// (`nested_block`), or `unused_braces` would take a one-line body for removable braces; and the
// value of each generated body is bound to `__value` before it is returned (`bound`), or the
// Rust 2024 migration lint `tail_expr_drop_order` would report the temporaries of the call
// outliving `__cache`. `tests/ui/pass/no_warnings.rs` compiles with warnings denied. `__cache`, `__key` and the other locals have
// mixed-site spans, so the user's code cannot see them. Keys and tags are rendered as `key.rs`
// shows; `#[cache_put]` and `#[cache_invalidate]` reuse these pieces (`write.rs`).
//
// The loader is a closure the runtime calls at most once. `Detached` lets the runtime refresh the
// entry in a background task, which needs the body to be `Send + 'static`; it is chosen only
// when the signature shows that the body owns everything it uses and when hits can refresh at
// all (early refresh on, or a stale window). Otherwise `InCaller` runs a refresh in the task of
// the caller that drew it. The loader is held in a local and lent to the runtime: a detached one
// as a `&mut dyn` with its type erased, so that the cache's code is compiled once per return
// type rather than once per function (see `loader.rs` in the runtime).
//
// The sharing block picks, by autoref specialization, whether the result of a failed load is
// cloned to the callers that waited on it (when the return type is `Clone`) or each of them runs
// the body itself. The failure block picks the same way whether a failed cache operation can be
// returned as `Err(E::from(error))` (when the return type is a `Result` whose `E` converts from
// the runtime's error); the runtime does so only under `on_cache_error = "fail"`, set on the
// policy or on the cache. The traits are imported in blocks of their own, so the user's block
// never sees them. With `on_cache_error = "fail"` the body also starts with
// `let _ = ::cachemacro_runtime::__private::assert_can_fail::<Result<User, DbError>>;`, spanned
// at the `"fail"` literal, so a return type that cannot carry the error is reported there.
//
// For a method already rewritten by `#[async_trait]`, the same statements go inside the
// `Box::pin(async move { .. })` it produced, its inner `async move` block is the loader's
// future, and the cached type is that future's `Output`.

mod companions;
mod key;
mod lending;
mod write;

use proc_macro2::{Delimiter, Group, Literal, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Block, GenericArgument, Ident, ItemFn, Path, PathArguments, Token, Type, TypeInfer};

use crate::ast::{stored_in, Body, Function, Returns};
use crate::attr::{self, Args, Macro};
use crate::errors::Errors;
use crate::valid;

/// How long `None` stays cached when `negative_ttl` is not given, in milliseconds.
const DEFAULT_NEGATIVE_TTL_MILLIS: u64 = 60_000;

/// Expands `#[cached(args)] item`.
pub(crate) fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Macro::Cached, args, item, expand_cached)
}

/// Expands `#[cache_put(args)] item`.
pub(crate) fn cache_put(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Macro::CachePut, args, item, write::cache_put)
}

/// Expands `#[cache_invalidate(args)] item`.
pub(crate) fn cache_invalidate(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Macro::CacheInvalidate, args, item, write::cache_invalidate)
}

/// Parses, checks and expands. On any error, emits `item` unchanged next to the errors, so that
/// code calling the function still type-checks and only the real mistakes are reported.
fn run(
    attribute: Macro,
    args: TokenStream,
    item: TokenStream,
    expand: fn(&Args, &Function) -> TokenStream,
) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::parse(args, attribute, &mut errors);
    valid::check_arguments(attribute, &args, &mut errors);
    let func =
        syn::parse2::<ItemFn>(item.clone()).and_then(|item| Function::from_item(item, attribute));
    let func = match func {
        Ok(func) => Some(func),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    if let Some(func) = &func {
        valid::check(attribute, &args, func, &mut errors);
    }
    match (errors.finish(), func) {
        (Ok(()), Some(func)) => expand(&args, &func),
        (result, _) => {
            let errors = result.err().map(|error| error.to_compile_error());
            quote!(#item #errors)
        }
    }
}

/// What `#[cached]` and `#[cache_put]` start with, both being about one entry: the runtime's
/// path, the checks of the return type and the statements that bind the policy, the cache, the
/// entry's key and its tags, the stored type with `impl Trait` erased so it can be written inside
/// the body, and the fault conversion.
pub(super) struct Entry {
    pub(super) private: TokenStream,
    /// The compile-time checks of the return type, then the bindings.
    pub(super) bindings: TokenStream,
    pub(super) output: Type,
    /// How a cache fault becomes the function's result, probed on its return type.
    pub(super) failure: TokenStream,
    cache: Ident,
    key: Ident,
    tags: Ident,
}

impl Entry {
    pub(super) fn of(args: &Args, func: &Function) -> Self {
        let private = private_path(args);
        let cache = local("__cache");
        let key = local("__key");
        let tags = local("__tags");
        let cache_init = cache_init(args, &private);
        let key_init = key::entry_key(args, func, &private, &cache, &func.sig.ident);
        let let_tags = let_tags(args, func, &private, &cache, &tags);
        let policy = policy(args, func.returns, &private);
        let function = function(args, func, &private);
        let output = erase_impl_trait(&func.output);
        let can_store = assert_cacheable(&private, func);
        let can_fail = assert_can_fail(args, &private, func);
        // The items first: an item after statements reads as misplaced to some lints.
        let bindings = quote! {
            #function
            static __CACHEMACRO_POLICY: #private::Policy =
                #policy.function(&__CACHEMACRO_FUNCTION);
            #can_store
            #can_fail
            let #cache = #cache_init;
            let #key = #key_init;
            #let_tags
        };
        Entry {
            failure: failure(&private, &output),
            private,
            bindings,
            output,
            cache,
            key,
            tags,
        }
    }

    /// The runtime call's first arguments: the cache, the key, the tags and the policy.
    pub(super) fn arguments(&self) -> TokenStream {
        let Entry {
            cache, key, tags, ..
        } = self;
        quote!(&#cache, &#key, &#tags, &__CACHEMACRO_POLICY,)
    }
}

fn expand_cached(args: &Args, func: &Function) -> TokenStream {
    let entry = Entry::of(args, func);
    let Entry {
        private,
        bindings,
        output,
        failure,
        ..
    } = &entry;
    let cached = by_return("cached", func.returns);
    let detaches = args.refreshes() && args.detaches();
    // A borrowing body is lent its arguments by sibling fns (`lending.rs`), which `unless` does
    // not wrap: such a function refreshes in its caller instead.
    let lends = args.unless.is_none();
    let lending = match &func.body {
        Body::Async(block)
            if lends && detaches && args.companions() && !func.can_outlive_caller() =>
        {
            func.lendable()
                .map(|params| lending::lending(func, block, &params, private))
        }
        _ => None,
    };
    let loader = match &lending {
        Some(lending) => lending.loader.clone(),
        None => {
            let loader = if detaches && func.can_outlive_caller() {
                quote!(Detached)
            } else {
                quote!(InCaller)
            };
            let body_future = unless(args, func, private, output, body_future(func, output));
            quote!(#private::#loader::new(move || #body_future))
        }
    };
    let loader_local = local("__loader");
    let sharing = quote! {{
        use #private::{ShareByClone as _, ShareNothing as _};
        (&#private::SharingProbe::<#output>::new()).sharing()
    }};
    let guard = companions::trait_impl_guard(
        args,
        func,
        private,
        lending.as_ref().map(|lending| lending.arity),
    );
    // `L`, the loader, and for a `Result` its error type `E`.
    let inferred = if func.returns == Returns::Result {
        2
    } else {
        1
    };
    let call = runtime_call(private, &cached, func, output, inferred, {
        let entry = entry.arguments();
        quote!(#entry #loader_local.as_loader(), #sharing, #failure,)
    });
    let caching = match &args.condition {
        None => quote! {
            #guard
            #bindings
            let mut #loader_local = #loader;
            #call
        },
        Some(condition) => {
            // Evaluated before the loader takes the arguments.
            let condition = &condition.value;
            let cached = local("__cached");
            let condition = quote_spanned!(condition.span()=> let #cached: bool = #condition;);
            let uncached = bound(quote!(#private::uncached(#loader_local.as_loader()).await));
            quote! {
                #guard
                #bindings
                #condition
                let mut #loader_local = #loader;
                if #cached {
                    #call
                } else {
                    #uncached
                }
            }
        }
    };
    let companions = companions::companions(args, func);
    match lending {
        Some(lending) => {
            let function = with_body(func, &lending.signature, caching);
            let siblings = lending.siblings;
            // Companions first: in a trait impl, the first errors then name them.
            quote!(#function #companions #siblings)
        }
        None => {
            let function = with_body(func, &func.sig, caching);
            quote!(#function #companions)
        }
    }
}

/// The user's function around `statements`: the whole body of an `async fn`, or what the
/// `Box::pin(async move { .. })` of an `#[async_trait]` method awaits.
fn with_body(func: &Function, sig: &syn::Signature, statements: TokenStream) -> TokenStream {
    let Function {
        outer_attrs,
        inner_attrs,
        vis,
        body,
        ..
    } = func;
    let body = match body {
        Body::Async(_) => statements,
        Body::AsyncTrait { boxing, .. } => {
            let mut boxing = boxing.clone();
            boxing
                .args
                .push(syn::Expr::Verbatim(quote!(async move { #statements })));
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

/// `body`, a future of `output`, wrapped with `unless` when given: a value it holds true for
/// is returned but not stored.
fn unless(
    args: &Args,
    func: &Function,
    private: &TokenStream,
    output: &Type,
    body: TokenStream,
) -> TokenStream {
    let Some(unless) = &args.unless else {
        return body;
    };
    let unless = &unless.value;
    let asks = match func.returns {
        Returns::Result => quote!(unless_ok),
        Returns::Option => quote!(unless_some),
        Returns::Plain => quote!(unless_value),
    };
    let outcome = local("__outcome");
    // At the closure: a mismatch of its parameter with the stored type is reported there.
    let at = unless.span();
    let asks = respan(quote!(#private::#asks), at);
    let mut arguments = Group::new(Delimiter::Parenthesis, quote!(&#outcome, #unless));
    arguments.set_span(at);
    let asked = quote!(#asks #arguments);
    quote! {
        async move {
            let #outcome: #output = #body.await;
            if #asked {
                #private::skip_store();
            }
            #outcome
        }
    }
}

/// The user's body as a future of `output`: the block of an `async fn` behind a fake early
/// return, or the async block of an `#[async_trait]` method.
fn body_future(func: &Function, output: &Type) -> TokenStream {
    match &func.body {
        Body::Async(block) => {
            let fake_return = fake_return(output);
            let inner = nested_block(block);
            quote_spanned!(block.span()=> async move { #fake_return #inner })
        }
        Body::AsyncTrait { loader, .. } => loader.to_token_stream(),
    }
}

/// The user's `block`, to be nested as the value of a block of the expansion. Its braces are
/// re-spanned to the same place in the expansion's context: rustc's `unused_braces` lint takes
/// a one-line block that is the value of another for braces the user could remove (and
/// `cargo fix` would remove them from the function, which then no longer parses), but it
/// leaves blocks of macro expansions alone. What is inside keeps the user's spans.
fn nested_block(block: &Block) -> TokenStream {
    let statements = &block.stmts;
    let mut braces = Group::new(Delimiter::Brace, quote!(#(#statements)*));
    braces.set_span(Span::mixed_site().located_at(block.brace_token.span.join()));
    TokenTree::Group(braces).into()
}

/// `let __value = #value; __value`: the value of a body whose locals have destructors (the cache
/// handle, the key), bound first so that none of its temporaries outlives them. Left as the tail
/// expression, they would be dropped after the locals until Rust 2024 and before them since,
/// which the `tail_expr_drop_order` lint of the 2024 migration reports on every expansion.
fn bound(value: TokenStream) -> TokenStream {
    let local = local("__value");
    quote!(let #local = #value; #local)
}

/// A local of the expansion, out of reach of the user's code.
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// The runtime function for `returns`: `cached_result`, `put_option`, `cached_value`, ...
fn by_return(prefix: &str, returns: Returns) -> Ident {
    let suffix = match returns {
        Returns::Result => "result",
        Returns::Option => "option",
        Returns::Plain => "value",
    };
    format_ident!("{prefix}_{suffix}")
}

/// The runtime crate: `::cachemacro_runtime` unless `crate` names another path.
fn runtime_path(args: &Args) -> TokenStream {
    match &args.krate {
        Some(krate) => {
            let krate: &Path = &krate.value;
            krate.to_token_stream()
        }
        None => quote!(::cachemacro_runtime),
    }
}

/// `#krate::__private`, through which the expansion reaches the runtime.
fn private_path(args: &Args) -> TokenStream {
    let krate = runtime_path(args);
    quote!(#krate::__private)
}

/// The cache the function uses: the `cache` expression, else the global cache.
fn cache_init(args: &Args, private: &TokenStream) -> TokenStream {
    match &args.cache {
        Some(expr) => {
            let expr = &expr.value;
            quote_spanned!(expr.span()=> #private::cache_handle(&(#expr)))
        }
        None => quote!(#private::global_cache()),
    }
}

/// `let #local: [Key; N] = [..];` with the `tags`, each rendered as the key of its epoch in the
/// cache held in `cache`; the type is written out so that an empty array has one too.
fn let_tags(
    args: &Args,
    func: &Function,
    private: &TokenStream,
    cache: &Ident,
    local: &Ident,
) -> TokenStream {
    let tags = key::tags(args, func, private, key::Start::EpochOf(cache));
    let count = Literal::usize_unsuffixed(tags.len());
    quote!(let #local: [#private::Key; #count] = [#(#tags),*];)
}

/// How a cache error becomes a value of `output`, picked by autoref specialization as the
/// sharing is: `Err(E::from(error))` for a `Result` whose `E` converts from the runtime's error,
/// never otherwise. The traits are imported in a block of their own, out of the user's sight.
fn failure(private: &TokenStream, output: &Type) -> TokenStream {
    quote! {{
        use #private::{FailByError as _, FailNever as _};
        (&#private::FailureProbe::<#output>::new()).failure()
    }}
}

/// The stored type of `func` (see `Function::stored`) with every token spanned at its first
/// one, and that span: where a type that cannot be stored is reported. `None` for a type naming
/// `$crate`, which needs its own spans to resolve.
fn stored_at(func: &Function) -> Option<(TokenStream, Span)> {
    let stored = func.stored()?.to_token_stream();
    if mentions(stored.clone(), "$crate") {
        return None;
    }
    let at = stored.clone().into_iter().next()?.span();
    Some((respan(stored, at), at))
}

/// `let _ = #private::assert_cacheable::<T>;` for the stored type `T`, which fails to compile,
/// at `T`, unless values of `T` can be stored. Left out when `T` holds an `impl Trait`, which
/// cannot be named here.
fn assert_cacheable(private: &TokenStream, func: &Function) -> TokenStream {
    match stored_at(func) {
        Some((stored, _)) if !mentions(stored.clone(), "impl") => {
            quote!(let _ = #private::assert_cacheable::<#stored>;)
        }
        _ => TokenStream::new(),
    }
}

/// `let __value = #private::#name::<T, _, ..>(#arguments).await; __value`: the call of the
/// runtime function `name` (`cached_result`, `put_value`, ..) whose type parameter `T` is the
/// stored type, followed by `inferred` others.
///
/// A type that cannot be stored breaks the bounds of `T` at three places: the assertion of
/// `assert_cacheable`, the path of the runtime function (its where-clauses) and the `.await`
/// (the well-formedness of the future it returns). rustc drops an error whose predicate an
/// error it already reported at the same span implies, so all three are spanned alike: the
/// assertion names the stored type respanned at its first token (`stored_at`), and so does the
/// turbofish here, whose path, parentheses and `.await` get that span too. Only the assertion's
/// error remains, at the return type, instead of one per bound at the attribute. The function's
/// other bounds are reported there as well: a loader whose future is not `Send` points at the
/// return type too. A span covers the type's first token only: joining spans needs a nightly
/// compiler.
fn runtime_call(
    private: &TokenStream,
    name: &Ident,
    func: &Function,
    output: &Type,
    inferred: usize,
    arguments: TokenStream,
) -> TokenStream {
    let Some((stored, at)) = stored_at(func) else {
        return bound(quote!(#private::#name(#arguments).await));
    };
    // The stored type again, from `output`: an `impl Trait` is `_` there.
    let stored = match stored_in(output, func.returns) {
        Some(erased) if mentions(stored.clone(), "impl") => respan(erased.to_token_stream(), at),
        _ => stored,
    };
    let inferred = (0..inferred).map(|_| quote!(_));
    let path = respan(quote!(#private::#name::<), at);
    let rest = respan(quote!(#(, #inferred)* >), at);
    let mut arguments = Group::new(Delimiter::Parenthesis, arguments);
    arguments.set_span(at);
    let awaiting = respan(quote!(.await), at);
    bound(quote!(#path #stored #rest #arguments #awaiting))
}

/// With `on_cache_error = "fail"`, a statement that compiles only when the return type can carry
/// the cache's error, spanned at the `"fail"` literal so the error points there. Left out when
/// the return type holds an `impl Trait`, which cannot be named here. A type naming `$crate`
/// keeps its spans, which that path needs to resolve.
fn assert_can_fail(args: &Args, private: &TokenStream, func: &Function) -> TokenStream {
    let Some(span) = args.fails_on_cache_error() else {
        return TokenStream::new();
    };
    let output = func.output.to_token_stream();
    if mentions(output.clone(), "impl") {
        return TokenStream::new();
    }
    let output = if mentions(output.clone(), "$crate") {
        output
    } else {
        respan(output, span)
    };
    quote_spanned!(span=> let _ = #private::assert_can_fail::<#output>;)
}

/// Whether `tokens` hold the identifier or keyword `name`.
fn mentions(tokens: TokenStream, name: &str) -> bool {
    tokens.into_iter().any(|token| match token {
        proc_macro2::TokenTree::Ident(ident) => ident == name,
        proc_macro2::TokenTree::Group(group) => mentions(group.stream(), name),
        _ => false,
    })
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut respanned =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                token = proc_macro2::TokenTree::Group(respanned);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// `.on_cache_error(..)` when `on_cache_error` is given, else nothing.
fn on_cache_error(args: &Args, private: &TokenStream) -> TokenStream {
    match &args.on_cache_error {
        Some(arg) if arg.value.fail => quote!(.on_cache_error(#private::OnCacheError::Fail)),
        Some(_) => quote!(.on_cache_error(#private::OnCacheError::Ignore)),
        None => TokenStream::new(),
    }
}

/// The `static` identity of the function, which its statistics and metrics go by: its
/// `name = "..."`, or else its path as the compiler resolves it, cut at run time from the type
/// name of a marker fn declared in its body (as a default key's scope is, see `key.rs`).
fn function(args: &Args, func: &Function, private: &TokenStream) -> TokenStream {
    if let Some(name) = &args.name {
        let name = &name.value;
        return quote! {
            static __CACHEMACRO_FUNCTION: #private::Function = #private::Function::named(#name);
        };
    }
    let marker = local("__cachemacro_function");
    let name = key::unraw(&func.sig.ident);
    quote! {
        fn #marker() {}
        static __CACHEMACRO_FUNCTION: #private::Function = #private::Function::scoped(
            || #private::scope(::core::any::type_name_of_val(&#marker), #name),
            #name,
        );
    }
}

/// The `static` policy: only what differs from `Policy::new()` is set.
fn policy(args: &Args, returns: Returns, private: &TokenStream) -> TokenStream {
    let mut policy = quote!(#private::Policy::new());
    if let Some(ttl) = &args.ttl {
        let ttl = duration(ttl.value);
        policy.extend(quote!(.ttl(#ttl)));
    }
    if let Some(profile) = &args.ttl_profile {
        let profile = &profile.value;
        policy.extend(quote!(.ttl_profile(#profile)));
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
    if let Some(sliding) = &args.sliding {
        let sliding = sliding.value;
        policy.extend(quote!(.sliding(#sliding)));
    }
    policy.extend(on_cache_error(args, private));
    policy.extend(encoding(args, private));
    policy
}

/// `.codec(..)`, `.compression(..)` and `.compress_above(..)` for the arguments given. A codec or
/// compression behind a feature of the runtime is named through a trait implemented only with
/// the feature, spanned at the literal, so that without it the error says which feature to
/// enable and points at the argument.
fn encoding(args: &Args, private: &TokenStream) -> TokenStream {
    let gated = |literal: &syn::LitStr, marker: &str, gate: &str, item: &str| {
        let [marker, gate, item] = [marker, gate, item].map(|name| format_ident!("{name}"));
        respan(
            quote!(<#private::#marker as #private::#gate>::#item),
            literal.span(),
        )
    };
    let mut calls = TokenStream::new();
    if let Some(codec) = &args.codec {
        let literal = &codec.value;
        let codec = match literal.value().as_str() {
            "msgpack" => gated(literal, "Msgpack", "MsgpackEnabled", "CODEC"),
            "postcard" => gated(literal, "Postcard", "PostcardEnabled", "CODEC"),
            _ => quote!(#private::Codec::Json),
        };
        calls.extend(quote!(.codec(#codec)));
    }
    if let Some(compress) = &args.compress {
        let literal = &compress.value;
        let compression = match literal.value().as_str() {
            "lz4" => gated(literal, "Lz4", "Lz4Enabled", "COMPRESSION"),
            "zstd" => gated(literal, "Zstd", "ZstdEnabled", "COMPRESSION"),
            _ => quote!(#private::Compression::None),
        };
        calls.extend(quote!(.compression(#compression)));
    }
    if let Some(above) = &args.compress_above {
        let bytes = Literal::u64_unsuffixed(above.value);
        calls.extend(quote!(.compress_above(#bytes)));
    }
    calls
}

fn duration(millis: u64) -> TokenStream {
    let millis = Literal::u64_unsuffixed(millis);
    quote!(::core::time::Duration::from_millis(#millis))
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

//! The write paths: `#[cache_put]` stores what the function returns, `#[cache_invalidate]`
//! removes entries once it has run.
//!
//! Input:
//!
//! ```text
//! #[cache_put(key = "user:<user.id>", ttl = "1h", tags = ["org:<user.org>"])]
//! async fn save_user(user: User) -> Result<User, DbError> {
//!     db::save(user).await
//! }
//! ```
//!
//! Output:
//!
//! ```text
//! async fn save_user(user: User) -> Result<User, DbError> {
//!     static __CACHEMACRO_POLICY: ::cachemacro_runtime::__private::Policy =
//!         ::cachemacro_runtime::__private::Policy::new()
//!             .ttl(::core::time::Duration::from_millis(3600000));
//!     let __cache = ::cachemacro_runtime::__private::global_cache();
//!     let __key = { /* "user:", user.id */ };
//!     // Each tag as the key of its epoch: the cache's prefix, `tag#`, then the tag.
//!     let __tags: [::cachemacro_runtime::__private::Key; 1] = [{ /* "org:", user.org */ }];
//!     let __value = ::cachemacro_runtime::__private::put_result(
//!         &__cache,
//!         &__key,
//!         &__tags,
//!         &__CACHEMACRO_POLICY,
//!         async move { /* fake return */ { db::save(user).await } },
//!         { /* the failure probe of `#[cached]`, for `Result<User, DbError>` */ },
//!     )
//!     .await;
//!     __value
//! }
//! ```
//!
//! Input:
//!
//! ```text
//! #[cache_invalidate(keys = ["product:<id>"], tags = ["vendor:<vendor_id>"])]
//! async fn delete_product(id: u64, vendor_id: u64) -> Result<(), DbError> {
//!     db::delete(id).await
//! }
//! ```
//!
//! Output:
//!
//! ```text
//! async fn delete_product(id: u64, vendor_id: u64) -> Result<(), DbError> {
//!     static __CACHEMACRO_POLICY: ::cachemacro_runtime::__private::Policy =
//!         ::cachemacro_runtime::__private::Policy::new();
//!     let __cache = ::cachemacro_runtime::__private::global_cache();
//!     // Both `::std::vec::Vec<::std::string::String>`, each item
//!     // `<::std::string::String as ::core::convert::From<Key>>::from({ .. })`:
//!     let __keys = ::std::vec![/* "product:", id */];
//!     let __tags = ::std::vec![/* "vendor:", vendor_id */];
//!     let __value = ::cachemacro_runtime::__private::invalidate_after_result(
//!         &__cache,
//!         __keys,
//!         __tags,
//!         &__CACHEMACRO_POLICY,
//!         async move { /* fake return */ { db::delete(id).await } },
//!         { /* the failure probe, for `Result<(), DbError>` */ },
//!     )
//!     .await;
//!     __value
//! }
//! ```
//!
//! Keys and tags are rendered before the body runs, which may move the arguments they read.
//! The body is a plain future awaited in the caller's task, so methods and borrowed parameters
//! need nothing special. `invalidate_after_result` invalidates only after an `Ok`;
//! `invalidate_after`, for every other return type, after any value. The policy of an
//! invalidation carries only `on_cache_error`; with `"fail"`, both write paths also start with
//! the `assert_can_fail` check of `#[cached]`.

use proc_macro2::TokenStream;
use quote::quote;

use super::key::{self, Start};
use super::{
    assert_can_fail, body_future, bound, by_return, cache_init, erase_impl_trait, failure, local,
    on_cache_error, private_path, runtime_call, with_body, Entry,
};
use crate::ast::{Function, Returns};
use crate::attr::Args;

pub(super) fn cache_put(args: &Args, func: &Function) -> TokenStream {
    let entry = Entry::of(args, func);
    let Entry {
        private,
        bindings,
        output,
        failure,
        ..
    } = &entry;
    let put = by_return("put", func.returns);
    let body_future = body_future(func, output);
    // For a `Result`, its error type `E`; the body is an `impl Future` parameter.
    let inferred = usize::from(func.returns == Returns::Result);
    let arguments = entry.arguments();
    let call = runtime_call(
        private,
        &put,
        func,
        output,
        inferred,
        quote!(#arguments #body_future, #failure,),
    );
    let statements = quote! {
        #bindings
        #call
    };
    with_body(func, &func.sig, statements)
}

/// The rendered `key` as a `String`, spelled out in full so that it resolves without the prelude.
fn owned(private: &TokenStream, key: &TokenStream) -> TokenStream {
    quote!(<::std::string::String as ::core::convert::From<#private::Key>>::from(#key))
}

pub(super) fn cache_invalidate(args: &Args, func: &Function) -> TokenStream {
    let private = private_path(args);
    let cache = local("__cache");
    let keys_local = local("__keys");
    let tags_local = local("__tags");
    let cache_init = cache_init(args, &private);
    let keys = args.keys.iter().flat_map(|keys| &keys.value);
    let keys = keys
        .map(|template| key::render(template, func, &private, Start::CachePrefix(&cache), None));
    let keys: Vec<TokenStream> = keys.map(|key| owned(&private, &key)).collect();
    let tags = key::tags(args, func, &private, Start::Empty);
    let tags = tags.iter().map(|tag| owned(&private, tag));
    let invalidate = match func.returns {
        Returns::Result => quote!(invalidate_after_result),
        Returns::Option | Returns::Plain => quote!(invalidate_after),
    };
    let output = erase_impl_trait(&func.output);
    let body_future = body_future(func, &output);
    let on_cache_error = on_cache_error(args, &private);
    let failure = failure(&private, &output);
    let can_fail = assert_can_fail(args, &private, func);
    let call = bound(quote! {
        #private::#invalidate(
            &#cache,
            #keys_local,
            #tags_local,
            &__CACHEMACRO_POLICY,
            #body_future,
            #failure,
        )
        .await
    });
    let statements = quote! {
        #can_fail
        static __CACHEMACRO_POLICY: #private::Policy = #private::Policy::new() #on_cache_error;
        let #cache = #cache_init;
        let #keys_local: ::std::vec::Vec<::std::string::String> = ::std::vec![#(#keys),*];
        let #tags_local: ::std::vec::Vec<::std::string::String> = ::std::vec![#(#tags),*];
        #call
    };
    with_body(func, &func.sig, statements)
}

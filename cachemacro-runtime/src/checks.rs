//! Compile-time checks of the expansion, written so that rustc reports a mistake once, at the
//! user's type, in words about caching.

use serde::{de::DeserializeOwned, Serialize};

/// Values a cache can hold: stored serialized, and decoded back into an owned value on a hit.
///
/// The expansion asserts it of a function's cached type first thing, at that type's tokens, and
/// names the same tokens as the type argument of the runtime function it calls. rustc then
/// reports one error, this one, where the return type is written: an unsatisfied bound that
/// implies the runtime function's `Serialize` and `DeserializeOwned` bounds at the same place
/// silences their errors, and `do_not_recommend` keeps the two bounds of the impl from being
/// reported one by one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached: a cached value must implement `serde::Serialize` and `serde::de::DeserializeOwned`",
    label = "the cache stores values of this type",
    note = "a cached value is serialized when it is stored and deserialized on each hit: derive both with `#[derive(serde::Serialize, serde::Deserialize)]`, bound a type parameter by `serde::Serialize + serde::de::DeserializeOwned`, or cache a type that implements them"
)]
pub trait Cacheable: Serialize + DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> Cacheable for T {}

/// Fails to compile unless `T` is [`Cacheable`].
pub const fn assert_cacheable<T: Cacheable>() {}

/// Implemented by nothing: what the companions of a `#[cached]` method require when the method
/// is in a trait impl, which cannot hold them (see `trait_impl_guard` in the macro crate).
#[diagnostic::on_unimplemented(
    message = "`#[cached]` cannot add its companions to this impl of a trait for `{Self}`: write `#[cached(companions = false)]`",
    label = "in a trait impl, write `companions = false`",
    note = "a trait impl holds only the trait's methods, so neither `invalidate_<name>` and `refresh_<name>` nor the sibling fn that lets refreshes run in the background can go there; the errors \"method `invalidate_<name>` is not a member of trait\" say the same",
    note = "with `companions = false`, the companions are left out and refreshes run in the task of the caller that draws them"
)]
pub trait CompanionsInTraitImpl {}

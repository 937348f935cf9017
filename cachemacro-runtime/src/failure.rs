//! How a cache fault becomes a function's return value under `on_cache_error = "fail"`: the
//! conversion, chosen per return type by autoref specialization, and the compile-time check.

use std::marker::PhantomData;

use crate::error::Error;
use crate::on_cache_error::OnCacheError;
use crate::policy::Policy;

/// How a cache error becomes the function's return value, when it can.
pub struct Failure<R> {
    convert: Option<fn(Error) -> R>,
}

impl<R> Failure<R> {
    /// Faults are never returned.
    pub fn never() -> Self {
        Self { convert: None }
    }

    /// The conversion to use for `policy` on a cache whose default is `default`, if faults are
    /// to be returned.
    pub(crate) fn converter(
        &self,
        default: OnCacheError,
        policy: &Policy,
    ) -> Option<fn(Error) -> R> {
        let mode = policy.on_cache_error.unwrap_or(default);
        (mode == OnCacheError::Fail)
            .then_some(self.convert)
            .flatten()
    }
}

impl<T, E: From<Error>> Failure<Result<T, E>> {
    /// Faults are returned as `Err(E::from(error))`.
    pub fn into_err() -> Self {
        Self {
            convert: Some(|error| Err(E::from(error))),
        }
    }
}

/// Picks [`Failure::into_err`] when the return type is `Result<T, E>` with
/// `E: From<cachemacro_runtime::Error>`, and [`Failure::never`] otherwise, by method resolution at
/// the call site: `(&FailureProbe::<R>::new()).failure()` with both traits in scope.
pub struct FailureProbe<R>(PhantomData<fn() -> R>);

impl<R> FailureProbe<R> {
    /// A probe for the return type `R`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

/// Chosen when the error type converts from the cache's error.
pub trait FailByError<R> {
    /// The failure conversion for `R`.
    fn failure(&self) -> Failure<R>;
}

impl<T, E: From<Error>> FailByError<Result<T, E>> for FailureProbe<Result<T, E>> {
    fn failure(&self) -> Failure<Result<T, E>> {
        Failure::into_err()
    }
}

/// The fallback for any other return type.
pub trait FailNever<R> {
    /// The failure conversion for `R`: none.
    fn failure(&self) -> Failure<R>;
}

impl<R> FailNever<R> for &FailureProbe<R> {
    fn failure(&self) -> Failure<R> {
        Failure::never()
    }
}

/// Return types that `on_cache_error = "fail"` can return a cache error through.
#[diagnostic::on_unimplemented(
    message = "`on_cache_error = \"fail\"` needs a `Result<T, E>` return type whose `E` implements `From<cachemacro_runtime::Error>`",
    label = "cannot return a cache error through `{Self}`"
)]
pub trait CanFail {}

impl<T, E: From<Error>> CanFail for Result<T, E> {}

/// Fails to compile unless `R` can carry a cache error: the check behind a function's
/// `on_cache_error = "fail"`.
pub const fn assert_can_fail<R: CanFail>() {}

//! How a function's return value maps to what is stored, and how a failed load reaches waiters.

use std::any::Any;
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use crate::policy::Policy;

thread_local! {
    /// Set by a body whose value `unless` keeps out of the cache, read by the fill right after.
    static SKIP_STORE: Cell<bool> = const { Cell::new(false) };
}

/// Keeps the value the body is returning out of the cache (`unless` said so): called by the
/// body's wrapper as it finishes. The fill that polls the body reads the mark in the same poll,
/// right after the body returns, so no other body's outcome can come in between.
pub fn skip_store() {
    SKIP_STORE.with(|skip| skip.set(true));
}

/// Whether the body that just returned asked not to be stored; clears the mark.
pub(crate) fn take_skip_store() -> bool {
    SKIP_STORE.with(|skip| skip.replace(false))
}

/// `unless` on a function returning `Result`: asked about `Ok` values only.
pub fn unless_ok<T, E>(outcome: &Result<T, E>, unless: impl FnOnce(&T) -> bool) -> bool {
    outcome.as_ref().is_ok_and(unless)
}

/// `unless` on a function returning `Option`: asked about `Some` values only.
pub fn unless_some<T>(outcome: &Option<T>, unless: impl FnOnce(&T) -> bool) -> bool {
    outcome.as_ref().is_some_and(unless)
}

/// `unless` on a function returning any other value.
pub fn unless_value<T>(outcome: &T, unless: impl FnOnce(&T) -> bool) -> bool {
    unless(outcome)
}

/// How a function's return value maps to what is stored.
pub trait Mode<R> {
    /// The stored value.
    type Value: Serialize + DeserializeOwned;
    /// The value to store and hand to waiters; `None` for a failure.
    fn value(outcome: &R) -> Option<&Self::Value>;
    /// How long a value is fresh, given the function's ttl; `None` when it is handed to waiters
    /// but not stored.
    fn ttl(outcome: &R, policy: &Policy, ttl: Duration) -> Option<Duration>;
    /// The return value for a stored value.
    fn from_value(value: Self::Value) -> R;
}

/// Every value is stored.
#[derive(Debug)]
pub struct PlainMode;
/// `Ok` values are stored; errors are returned, never stored.
#[derive(Debug)]
pub struct ResultMode;
/// `Some` is stored for the ttl, `None` for the negative ttl when there is one.
#[derive(Debug)]
pub struct OptionMode;

impl<T: Serialize + DeserializeOwned> Mode<T> for PlainMode {
    type Value = T;
    fn value(outcome: &T) -> Option<&T> {
        Some(outcome)
    }
    fn ttl(_: &T, _: &Policy, ttl: Duration) -> Option<Duration> {
        Some(ttl)
    }
    fn from_value(value: T) -> T {
        value
    }
}

impl<T: Serialize + DeserializeOwned, E> Mode<Result<T, E>> for ResultMode {
    type Value = T;
    fn value(outcome: &Result<T, E>) -> Option<&T> {
        outcome.as_ref().ok()
    }
    fn ttl(_: &Result<T, E>, _: &Policy, ttl: Duration) -> Option<Duration> {
        Some(ttl)
    }
    fn from_value(value: T) -> Result<T, E> {
        Ok(value)
    }
}

impl<T: Serialize + DeserializeOwned> Mode<Option<T>> for OptionMode {
    type Value = Option<T>;
    fn value(outcome: &Option<T>) -> Option<&Option<T>> {
        Some(outcome)
    }
    fn ttl(outcome: &Option<T>, policy: &Policy, ttl: Duration) -> Option<Duration> {
        match outcome {
            Some(_) => Some(ttl),
            None => policy.negative_ttl_value(),
        }
    }
    fn from_value(value: Option<T>) -> Option<T> {
        value
    }
}

/// How a failed load reaches the callers that waited on it: a clone each when the return type is
/// `Clone`, otherwise each waiter runs the body itself.
pub struct Sharing<R> {
    share: Option<fn(&R) -> SharedFailure>,
    unshare: fn(&(dyn Any + Send + Sync)) -> Option<R>,
}

/// A failed load's result, type-erased so one single-flight table serves every return type.
pub(crate) type SharedFailure = Arc<dyn Any + Send + Sync>;

impl<R> Sharing<R> {
    /// Waiters of a failed load run the body themselves.
    pub fn nothing() -> Self {
        Self {
            share: None,
            unshare: |_| None,
        }
    }
}

impl<R> Sharing<R> {
    pub(crate) fn share(&self, outcome: &R) -> Option<SharedFailure> {
        self.share.map(|share| share(outcome))
    }

    pub(crate) fn unshare(&self, shared: &(dyn Any + Send + Sync)) -> Option<R> {
        (self.unshare)(shared)
    }

    /// Whether `R` can be cloned out of a type-erased value: what the near cache keeps.
    pub(crate) fn clones(&self) -> bool {
        self.share.is_some()
    }
}

impl<R: Clone + Send + Sync + 'static> Sharing<R> {
    /// Waiters of a failed load get a clone of its result.
    pub fn by_clone() -> Self {
        Self {
            share: Some(|outcome| Arc::new(outcome.clone())),
            unshare: |shared| shared.downcast_ref::<R>().cloned(),
        }
    }
}

/// Picks [`Sharing::by_clone`] when `R` is `Clone` and [`Sharing::nothing`] otherwise, by method
/// resolution at the call site: `(&SharingProbe::<R>::new()).sharing()` with both traits in scope.
pub struct SharingProbe<R>(PhantomData<fn() -> R>);

impl<R> SharingProbe<R> {
    /// A probe for the return type `R`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

/// Chosen when `R` is `Clone + Send + Sync + 'static`.
pub trait ShareByClone<R> {
    /// The sharing for `R`.
    fn sharing(&self) -> Sharing<R>;
}

impl<R: Clone + Send + Sync + 'static> ShareByClone<R> for SharingProbe<R> {
    fn sharing(&self) -> Sharing<R> {
        Sharing::by_clone()
    }
}

/// The fallback for any other `R`.
pub trait ShareNothing<R> {
    /// The sharing for `R`.
    fn sharing(&self) -> Sharing<R>;
}

impl<R> ShareNothing<R> for &SharingProbe<R> {
    fn sharing(&self) -> Sharing<R> {
        Sharing::nothing()
    }
}

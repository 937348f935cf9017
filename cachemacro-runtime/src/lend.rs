//! Owning what a borrowing function borrows, so that its refresh can outlive the caller.
//!
//! A refresh served from a hit must not make its caller wait for the database, so it runs in a
//! background task, which owns everything it uses. A function taking `&self`, `&str` or
//! `&Cache` borrows from its caller; its refresh can still be detached when each borrowed
//! argument has an owned form (`Clone` for sized types, `ToOwned` for `str`, slices, paths) that
//! is `Send + Sync + 'static`, and when the body's future is `Send`. Whether that holds is known
//! only to the type checker, so the generated code asks it, by autoref specialization:
//!
//! - [`HoldProbe`] turns each borrowed argument into a holder: [`Owned`] (a copy made with
//!   `ToOwned`) when it can be owned, else [`Lent`] (the borrow itself);
//! - the function's body runs through a hidden sibling generic over the holders, which lends
//!   each holder back as the reference the body expects ([`Lend`]);
//! - [`DetachProbe`] looks at that sibling's future and at the holders' types: when every holder
//!   owns and the future is `Send + 'static`, it routes the refresh to a background task,
//!   otherwise to the caller's task.
//!
//! The probes decide on types alone. Owning happens only when a refresh is drawn, never on a hit
//! or a miss (a body that is not `Send` still has its arguments copied for a refresh it then runs
//! in the caller: the holders come first, as the future's type depends on them), and a detached
//! refresh runs the body on the copies: on a clone of `self`, which for
//! the usual service (a pool or a client behind an `Arc`) shares everything that matters.
//!
//! One limit is the type checker's: it ignores lifetimes when it picks an impl. A type that is
//! `Clone + Send + Sync` but not `'static` (a `struct Repo<'a>`, or `Svc<T>` in an impl whose `T`
//! lacks a `'static` bound) is picked as owned and then fails to compile. `detach = false` keeps
//! such a function's refreshes in the caller.

use std::borrow::Borrow;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use crate::core::Step;
use crate::fill::RefreshJob;
use crate::outcome::Mode;

/// A holder of an argument that the body receives as `&T`.
pub trait Lend<T: ?Sized> {
    /// The argument as the body receives it.
    fn lend(&self) -> &T;
}

/// An owned copy of a borrowed argument.
#[derive(Debug)]
pub struct Owned<O>(O);

impl<T: ?Sized, O: Borrow<T>> Lend<T> for Owned<O> {
    fn lend(&self) -> &T {
        self.0.borrow()
    }
}

/// A borrowed argument that cannot be owned: it stays borrowed from the caller.
#[derive(Debug)]
pub struct Lent<'a, T: ?Sized>(&'a T);

impl<T: ?Sized> Lend<T> for Lent<'_, T> {
    fn lend(&self) -> &T {
        self.0
    }
}

/// Picks the holder for a borrowed argument: `(&HoldProbe(arg)).hold()`.
#[derive(Debug)]
pub struct HoldProbe<'a, T: ?Sized>(pub &'a T);

/// Picked when the argument has an owned form that a background task can hold.
pub trait HoldOwned {
    /// [`Owned`].
    type Holder;
    /// Copies the argument.
    fn hold(&self) -> Self::Holder;
}

impl<T> HoldOwned for HoldProbe<'_, T>
where
    T: ?Sized + ToOwned,
    T::Owned: Send + Sync + 'static,
{
    type Holder = Owned<T::Owned>;

    fn hold(&self) -> Owned<T::Owned> {
        Owned(self.0.to_owned())
    }
}

/// Picked otherwise: the argument stays borrowed.
pub trait HoldBorrowed<'a> {
    /// [`Lent`].
    type Holder;
    /// Keeps the borrow.
    fn hold(&self) -> Self::Holder;
}

impl<'a, T: ?Sized> HoldBorrowed<'a> for &HoldProbe<'a, T> {
    type Holder = Lent<'a, T>;

    fn hold(&self) -> Lent<'a, T> {
        Lent(self.0)
    }
}

/// The type of `holder`, for [`DetachProbe`]: the marks of all holders form the list
/// `(mark(&a), (mark(&b), ()))`.
pub fn mark<H>(_holder: &H) -> PhantomData<H> {
    PhantomData
}

/// A list of holder marks in which every holder owns its argument.
pub trait AllOwned {}

impl AllOwned for () {}

impl<O, Rest: AllOwned> AllOwned for (PhantomData<Owned<O>>, Rest) {}

/// Where a refresh runs: picked by [`DetachProbe`].
pub enum Refresh<Fut> {
    /// In a background task.
    Detached(DetachedRefresh),
    /// In the caller's task, which awaits `Fut`.
    InCaller(Fut),
}

/// A refresh that owns its load, waiting for the entry it refreshes.
pub struct DetachedRefresh(Box<dyn FnOnce(RefreshJob) -> RefreshTask + Send>);

/// A whole refresh, ready to be spawned.
type RefreshTask = Step<'static, ()>;

impl DetachedRefresh {
    pub(crate) fn task(self, job: RefreshJob) -> RefreshTask {
        (self.0)(job)
    }
}

impl std::fmt::Debug for DetachedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DetachedRefresh")
    }
}

impl<Fut> std::fmt::Debug for Refresh<Fut> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refresh::Detached(_) => f.write_str("Detached"),
            Refresh::InCaller(_) => f.write_str("InCaller"),
        }
    }
}

/// Picks where a refresh runs from the type of its load `Fut`, the marks of its holders and the
/// function's [`Mode`] `M`: `(&DetachProbe::<_, _, M>::of(&load, &marks)).route()(load)`.
pub struct DetachProbe<Fut, Marks, M>(PhantomData<Probed<Fut, Marks, M>>);

/// What a [`DetachProbe`] looks at, without holding any of it.
type Probed<Fut, Marks, M> = fn() -> (Fut, Marks, M);

impl<Fut, Marks, M> DetachProbe<Fut, Marks, M> {
    /// The probe for `load` and `marks`.
    pub fn of(_load: &Fut, _marks: &Marks) -> Self {
        DetachProbe(PhantomData)
    }
}

impl<Fut, Marks, M> std::fmt::Debug for DetachProbe<Fut, Marks, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DetachProbe")
    }
}

/// Picked when every holder owns its argument and the load can run on another thread.
pub trait RouteDetached<Fut> {
    /// Routes the refresh to a background task.
    fn route(&self) -> fn(Fut) -> Refresh<Fut>;
}

impl<Fut, Marks, M> RouteDetached<Fut> for DetachProbe<Fut, Marks, M>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
    Marks: AllOwned,
    M: Mode<Fut::Output> + 'static,
{
    fn route(&self) -> fn(Fut) -> Refresh<Fut> {
        detach::<Fut, M>
    }
}

/// Picked otherwise.
pub trait RouteInCaller<Fut> {
    /// Routes the refresh to the caller's task.
    fn route(&self) -> fn(Fut) -> Refresh<Fut>;
}

impl<Fut, Marks, M> RouteInCaller<Fut> for &DetachProbe<Fut, Marks, M> {
    fn route(&self) -> fn(Fut) -> Refresh<Fut> {
        Refresh::InCaller
    }
}

fn detach<Fut, M>(load: Fut) -> Refresh<Fut>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
    M: Mode<Fut::Output> + 'static,
{
    Refresh::Detached(DetachedRefresh(Box::new(move |job: RefreshJob| {
        // The load erased too, so that the refresh's shell is compiled once per return type.
        let load: Pin<Box<dyn Future<Output = Fut::Output> + Send>> = Box::pin(load);
        Box::pin(crate::fill::refresh::<Fut::Output, M>(job, load))
    })))
}

#[cfg(test)]
// The probes are called as the expansion calls them: the borrow is what lets the fallback apply.
#[allow(clippy::needless_borrow)]
mod tests {
    use std::path::Path;
    use std::rc::Rc;

    use super::*;
    use crate::outcome::PlainMode;

    fn owns<H>(holder: &H) -> bool {
        std::any::type_name_of_val(holder).contains("Owned<")
    }

    #[test]
    fn arguments_with_a_sendable_owned_form_are_copied() {
        let text = String::from("abc");
        let held = (&HoldProbe(text.as_str())).hold();
        assert!(owns(&held));
        assert_eq!(Lend::<str>::lend(&held), "abc");
        let bytes = (&HoldProbe(&[1u8, 2][..])).hold();
        assert!(owns(&bytes));
        assert_eq!(Lend::<[u8]>::lend(&bytes), &[1, 2]);
        let path = (&HoldProbe(Path::new("/tmp"))).hold();
        assert!(owns(&path));
    }

    #[test]
    fn arguments_without_one_stay_borrowed() {
        let shared = Rc::new(5);
        let held = (&HoldProbe(&shared)).hold();
        assert!(!owns(&held));
        assert_eq!(**Lend::<Rc<i32>>::lend(&held), 5);

        struct NotClone;
        let value = NotClone;
        let held = (&HoldProbe(&value)).hold();
        assert!(!owns(&held));
    }

    async fn sendable(text: Owned<String>) -> usize {
        tokio::task::yield_now().await;
        Lend::<str>::lend(&text).len()
    }

    async fn not_sendable(text: Owned<String>) -> usize {
        let here = Rc::new(1);
        tokio::task::yield_now().await;
        Lend::<str>::lend(&text).len() + *here
    }

    async fn borrowing<H: Lend<str>>(text: H) -> usize {
        Lend::<str>::lend(&text).len()
    }

    fn detached<Fut>(refresh: &Refresh<Fut>) -> bool {
        matches!(refresh, Refresh::Detached(_))
    }

    #[test]
    fn a_load_that_owns_everything_and_is_send_is_detached() {
        let load = sendable(Owned("a".to_owned()));
        let marks = (PhantomData::<Owned<String>>, ());
        let route = (&DetachProbe::<_, _, PlainMode>::of(&load, &marks)).route();
        assert!(detached(&route(load)));
    }

    #[test]
    fn a_load_that_is_not_send_runs_in_the_caller() {
        let load = not_sendable(Owned("a".to_owned()));
        let marks = (PhantomData::<Owned<String>>, ());
        let route = (&DetachProbe::<_, _, PlainMode>::of(&load, &marks)).route();
        assert!(!detached(&route(load)));
    }

    #[test]
    fn a_load_with_a_borrowed_holder_runs_in_the_caller() {
        let text = String::from("a");
        let owned = (&HoldProbe(text.as_str())).hold();
        let lent = Lent(text.as_str());
        let marks = (mark(&owned), (mark(&lent), ()));
        let load = borrowing(lent);
        let route = (&DetachProbe::<_, _, PlainMode>::of(&load, &marks)).route();
        assert!(!detached(&route(load)));
    }
}

//! Where a function's body runs: in the caller's task, or in a background task for refreshes.

use std::future::Future;

use crate::cache::Cache;
use crate::flight::RefreshClaim;
use crate::key::Key;
use crate::lend::{Refresh, RefreshJob};
use crate::outcome::Mode;
use crate::policy::Policy;

/// Starts the function's body; where a refresh of it may run.
pub trait Loader<R>: Sized {
    /// The running body.
    type Future: Future<Output = R>;

    /// Starts the body in the caller's task.
    fn start(self) -> Self::Future;

    /// Refreshes the entry under `key` with this loader: in a background task when the body can
    /// outlive the caller, otherwise in the caller's task.
    fn refresh<M: Mode<R> + 'static>(
        self,
        cache: &Cache,
        key: String,
        tags: Vec<Key>,
        policy: Policy,
        claim: RefreshClaim,
    ) -> impl Future<Output = ()>;
}

/// A body that borrows from the caller (`&self`, references): refreshes run in the caller's task.
#[derive(Debug)]
pub struct InCaller<F>(pub F);

/// A body that owns everything it uses: refreshes run in a background task.
#[derive(Debug)]
pub struct Detached<F>(pub F);

/// A body that borrows from the caller, with a way to own what it borrows for a refresh
/// (`lend.rs`): `args` are the owned arguments, which exactly one of `start` (a call's own
/// load, on the caller's borrows) and `refresh` (a refresh, routed by
/// [`DetachProbe`](crate::lend::DetachProbe)) receives.
#[derive(Debug)]
pub struct Lending<A, S, D> {
    args: A,
    start: S,
    refresh: D,
}

impl<A, S, D> Lending<A, S, D> {
    /// The loader; the bounds let the compiler infer the closures' parameter types.
    pub fn new<SF, DF>(args: A, start: S, refresh: D) -> Self
    where
        S: FnOnce(A) -> SF,
        D: FnOnce(A) -> Refresh<DF>,
    {
        Lending {
            args,
            start,
            refresh,
        }
    }
}

impl<R, F, Fut> Loader<R> for InCaller<F>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    type Future = Fut;

    fn start(self) -> Fut {
        (self.0)()
    }

    fn refresh<M: Mode<R> + 'static>(
        self,
        cache: &Cache,
        key: String,
        tags: Vec<Key>,
        policy: Policy,
        claim: RefreshClaim,
    ) -> impl Future<Output = ()> {
        crate::fill::refresh::<R, M>(cache.clone(), key, tags, policy, self.start(), claim)
    }
}

impl<R, F, Fut> Loader<R> for Detached<F>
where
    R: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    type Future = Fut;

    fn start(self) -> Fut {
        (self.0)()
    }

    fn refresh<M: Mode<R> + 'static>(
        self,
        cache: &Cache,
        key: String,
        tags: Vec<Key>,
        policy: Policy,
        claim: RefreshClaim,
    ) -> impl Future<Output = ()> {
        let job =
            crate::fill::refresh::<R, M>(cache.clone(), key, tags, policy, self.start(), claim);
        spawn_or_run(job)
    }
}

impl<R, A, S, SF, D, DF> Loader<R> for Lending<A, S, D>
where
    S: FnOnce(A) -> SF,
    SF: Future<Output = R>,
    D: FnOnce(A) -> Refresh<DF>,
    DF: Future<Output = R>,
{
    type Future = SF;

    fn start(self) -> SF {
        (self.start)(self.args)
    }

    fn refresh<M: Mode<R> + 'static>(
        self,
        cache: &Cache,
        key: String,
        tags: Vec<Key>,
        policy: Policy,
        claim: RefreshClaim,
    ) -> impl Future<Output = ()> {
        let cache = cache.clone();
        let route = (self.refresh)(self.args);
        async move {
            match route {
                Refresh::Detached(refresh) => {
                    let job = RefreshJob {
                        cache,
                        key,
                        tags,
                        policy,
                        claim,
                    };
                    spawn_or_run(refresh.task(job)).await;
                }
                Refresh::InCaller(load) => {
                    crate::fill::refresh::<R, M>(cache, key, tags, policy, load, claim).await;
                }
            }
        }
    }
}

/// Runs `job` in a background task, or in the caller's when no Tokio runtime is current.
async fn spawn_or_run(job: impl Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(job)),
        Err(_) => job.await,
    }
}

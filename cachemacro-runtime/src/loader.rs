//! Where a function's body runs: in the caller's task, or in a background task for refreshes.

use std::future::Future;

use crate::cache::Cache;
use crate::flight::RefreshClaim;
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
        tags: Vec<String>,
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
        tags: Vec<String>,
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

    #[allow(clippy::manual_async_fn)]
    fn refresh<M: Mode<R> + 'static>(
        self,
        cache: &Cache,
        key: String,
        tags: Vec<String>,
        policy: Policy,
        claim: RefreshClaim,
    ) -> impl Future<Output = ()> {
        let job =
            crate::fill::refresh::<R, M>(cache.clone(), key, tags, policy, self.start(), claim);
        async move {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(job)),
                Err(_) => job.await,
            }
        }
    }
}

//! Where a function's body runs: in the caller's task, or in a background task for refreshes.

use std::future::Future;
use std::pin::Pin;

use std::marker::PhantomData;

use crate::call::Call;
use crate::error::Error;
use crate::fill::{RefreshJob, Step};
use crate::lend::Refresh;
use crate::outcome::{Mode, Sharing};

/// Starts the function's body; where a refresh of it may run.
pub trait Loader<R>: Sized {
    /// The running body, as a miss awaits it: type-erased where its bounds allow, so that the
    /// miss path's shell ([`load`](crate::fill::load)) is compiled once per return type rather
    /// than once per function. A box costs nothing next to the database load it holds.
    type Load: Future<Output = R>;

    /// Starts the body in the caller's task.
    fn start(self) -> Self::Load;

    /// Refreshes the entry of `job` with this loader: in a background task when the body can
    /// outlive the caller, otherwise in the caller's task.
    fn refresh<M: Mode<R> + 'static>(self, job: RefreshJob) -> impl Future<Output = ()>;

    /// Serves a call with this loader: the hit path, and the miss path on a miss.
    fn serve<M: Mode<R> + 'static>(
        self,
        call: Call<'_>,
        sharing: Sharing<R>,
        convert: Option<fn(Error) -> R>,
    ) -> impl Future<Output = R> {
        crate::aside::served::<R, M, Self>(call, self, sharing, convert)
    }
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

// Not erased: nothing says whether the body is `Send`, and erasing it as one that is not would
// take that from every caller's future.
impl<R, F, Fut> Loader<R> for InCaller<F>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    type Load = Fut;

    fn start(self) -> Fut {
        (self.0)()
    }

    fn refresh<M: Mode<R> + 'static>(self, job: RefreshJob) -> impl Future<Output = ()> {
        crate::fill::refresh::<R, M>(job, self.start())
    }
}

impl<R, F, Fut> Loader<R> for Detached<F>
where
    R: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    type Load = Pin<Box<dyn Future<Output = R> + Send>>;

    fn start(self) -> Self::Load {
        Box::pin((self.0)())
    }

    fn refresh<M: Mode<R> + 'static>(self, job: RefreshJob) -> impl Future<Output = ()> {
        spawn_or_run(Box::pin(crate::fill::refresh::<R, M>(job, self.start())))
    }

    /// Served behind a `&mut dyn Erased`: the function's body is all the code a detached
    /// function compiles of its own; the hit path and the miss path are shared by every function
    /// that returns the same type.
    async fn serve<M: Mode<R> + 'static>(
        self,
        call: Call<'_>,
        sharing: Sharing<R>,
        convert: Option<fn(Error) -> R>,
    ) -> R {
        let mut body = ErasedBody::<F, M> {
            body: Some(self.0),
            mode: PhantomData,
        };
        let loader: &mut dyn Erased<R> = &mut body;
        crate::aside::served::<R, M, _>(call, loader, sharing, convert).await
    }
}

/// A detached loader with its type erased; see [`Detached::serve`](Loader::serve).
pub trait Erased<R>: Send {
    /// Starts the body.
    fn start(&mut self) -> Pin<Box<dyn Future<Output = R> + Send>>;
    /// The refresh of `job`'s entry, ready to be spawned.
    fn refresh(&mut self, job: RefreshJob) -> Step<'static, ()>;
}

/// The body of a detached loader, for a function of mode `M`; taken by the first of `start` and
/// `refresh`, which a call runs at most once.
struct ErasedBody<F, M> {
    body: Option<F>,
    mode: PhantomData<fn() -> M>,
}

impl<F, M> ErasedBody<F, M> {
    fn take(&mut self) -> F {
        self.body
            .take()
            .expect("a call starts its body at most once")
    }
}

impl<R, F, Fut, M> Erased<R> for ErasedBody<F, M>
where
    R: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
    M: Mode<R> + 'static,
{
    fn start(&mut self) -> Pin<Box<dyn Future<Output = R> + Send>> {
        Box::pin((self.take())())
    }

    fn refresh(&mut self, job: RefreshJob) -> Step<'static, ()> {
        Box::pin(crate::fill::refresh::<R, M>(job, self.start()))
    }
}

// The mode the refresh stores with is the erased body's own, fixed where it was erased: `M` here
// is the same one.
impl<R: Send + 'static> Loader<R> for &mut (dyn Erased<R> + '_) {
    type Load = Pin<Box<dyn Future<Output = R> + Send>>;

    fn start(self) -> Self::Load {
        Erased::start(self)
    }

    fn refresh<M: Mode<R> + 'static>(self, job: RefreshJob) -> impl Future<Output = ()> {
        spawn_or_run(Erased::refresh(self, job))
    }
}

impl<R, A, S, SF, D, DF> Loader<R> for Lending<A, S, D>
where
    S: FnOnce(A) -> SF,
    SF: Future<Output = R>,
    D: FnOnce(A) -> Refresh<DF>,
    DF: Future<Output = R>,
{
    type Load = SF;

    fn start(self) -> SF {
        (self.start)(self.args)
    }

    fn refresh<M: Mode<R> + 'static>(self, job: RefreshJob) -> impl Future<Output = ()> {
        let route = (self.refresh)(self.args);
        async move {
            match route {
                Refresh::Detached(refresh) => spawn_or_run(refresh.task(job)).await,
                Refresh::InCaller(load) => crate::fill::refresh::<R, M>(job, load).await,
            }
        }
    }
}

/// Runs `job` in a background task, or in the caller's when no Tokio runtime is current.
async fn spawn_or_run(job: Step<'static, ()>) {
    if let Some(job) = spawn(job) {
        job.await;
    }
}

/// Spawns `job` on the current Tokio runtime; hands it back when there is none. A plain function,
/// so that the task's machinery is compiled once, in this crate, for every cached function.
fn spawn(job: Step<'static, ()>) -> Option<Step<'static, ()>> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            drop(runtime.spawn(job));
            None
        }
        Err(_) => Some(job),
    }
}

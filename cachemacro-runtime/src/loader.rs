//! Where a function's body runs (in the caller's task, or in a background task for refreshes),
//! and how little of the cache each function compiles of its own.
//!
//! The generated code holds its loader in a local and hands the runtime `loader.as_loader()`:
//! for a loader whose futures are `Send` (a [`Detached`] one, and a [`Lending`] one whose body is
//! `Send`, wrapped in [`SendLending`] by [`LendingProbe`]) that is a `&mut dyn Erased`, so that
//! the hit path and the miss path, generic over the loader, are compiled once per return type
//! and shared by every such function; the function itself compiles little more than its body.
//! A loader that may not be `Send` ([`InCaller`], or a lending one whose body is not) is served
//! through its own type: erasing it as a future that is not `Send` would take `Send` from every
//! caller's future.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use crate::core::Step;
use crate::fill::RefreshJob;
use crate::lend::{DetachedRefresh, Refresh};
use crate::outcome::Mode;

/// Starts the function's body; where a refresh of it may run. Implemented for `&mut` loaders:
/// the caller holds the loader, which a call starts at most once.
pub trait Loader<R>: Sized {
    /// The running body, as a miss awaits it.
    type Load: Future<Output = R>;

    /// Starts the body in the caller's task.
    fn start(self) -> Self::Load;

    /// Refreshes the entry of `job` with this loader: in a background task when the body can
    /// outlive the caller, otherwise in the caller's task.
    fn refresh<M: Mode<R> + 'static>(self, job: RefreshJob) -> impl Future<Output = ()>;
}

/// Takes a loader's parts: a call starts its body, or refreshes with it, at most once.
fn take<T>(parts: &mut Option<T>) -> T {
    parts.take().expect("a call starts its body at most once")
}

/// A body that borrows from the caller (`&self`, references), or may not be `Send`: refreshes
/// run in the caller's task.
#[derive(Debug)]
pub struct InCaller<F>(Option<F>);

impl<F> InCaller<F> {
    /// The loader of `body`.
    pub fn new(body: F) -> Self {
        InCaller(Some(body))
    }

    /// The loader as the runtime takes it.
    pub fn as_loader(&mut self) -> &mut Self {
        self
    }
}

impl<R, F, Fut> Loader<R> for &mut InCaller<F>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    type Load = Fut;

    fn start(self) -> Fut {
        take(&mut self.0)()
    }

    fn refresh<M: Mode<R> + 'static>(self, job: RefreshJob) -> impl Future<Output = ()> {
        crate::fill::refresh::<R, M>(job, self.start())
    }
}

/// A body that owns everything it uses and is `Send`: refreshes run in a background task.
#[derive(Debug)]
pub struct Detached<F>(Option<F>);

impl<F> Detached<F> {
    /// The loader of `body`.
    pub fn new(body: F) -> Self {
        Detached(Some(body))
    }

    /// The loader as the runtime takes it: type-erased.
    pub fn as_loader<R>(&mut self) -> &mut (dyn Erased<'static, R> + '_)
    where
        Self: Erased<'static, R>,
    {
        self
    }
}

/// A loader whose futures are `Send`, with its type erased (see the module's documentation).
pub trait Erased<'a, R>: Send {
    /// Starts the body.
    fn start(&mut self) -> Pin<Box<dyn Future<Output = R> + Send + 'a>>;
    /// Where a refresh runs, and on what.
    fn refresh(&mut self) -> ErasedRefresh<'a, R>;
}

/// Where the refresh of an [`Erased`] loader runs.
pub enum ErasedRefresh<'a, R> {
    /// In a background task, on this body, which owns everything it uses.
    Spawn(Pin<Box<dyn Future<Output = R> + Send>>),
    /// In a background task, as this lending loader's refresh (on owned copies of its borrows).
    Task(DetachedRefresh),
    /// In the caller's task, on this body.
    InCaller(Pin<Box<dyn Future<Output = R> + Send + 'a>>),
}

impl<F> Detached<F> {
    fn body<R, Fut>(&mut self) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = R> + Send + 'static,
    {
        Box::pin(take(&mut self.0)())
    }
}

impl<'a, R, F, Fut> Erased<'a, R> for Detached<F>
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = R> + Send + 'static,
{
    fn start(&mut self) -> Pin<Box<dyn Future<Output = R> + Send + 'a>> {
        self.body()
    }

    fn refresh(&mut self) -> ErasedRefresh<'a, R> {
        ErasedRefresh::Spawn(self.body())
    }
}

// Generic over the return type and the mode only: one copy serves every erased loader that
// returns the same type.
impl<'a, R: Send + 'static> Loader<R> for &mut (dyn Erased<'a, R> + '_) {
    type Load = Pin<Box<dyn Future<Output = R> + Send + 'a>>;

    fn start(self) -> Self::Load {
        Erased::start(self)
    }

    async fn refresh<M: Mode<R> + 'static>(self, job: RefreshJob) {
        match Erased::refresh(self) {
            ErasedRefresh::Spawn(body) => {
                spawn_or_run(Box::pin(crate::fill::refresh::<R, M>(job, body))).await;
            }
            ErasedRefresh::Task(refresh) => spawn_or_run(refresh.task(job)).await,
            ErasedRefresh::InCaller(body) => crate::fill::refresh::<R, M>(job, body).await,
        }
    }
}

/// A body that borrows from the caller, with a way to own what it borrows for a refresh
/// (`lend.rs`): `args` are the owned arguments, which exactly one of `start` (a call's own
/// load, on the caller's borrows) and `refresh` (a refresh, routed by
/// [`DetachProbe`](crate::lend::DetachProbe)) receives.
#[derive(Debug)]
pub struct Lending<A, S, D>(Option<LendingParts<A, S, D>>);

#[derive(Debug)]
struct LendingParts<A, S, D> {
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
        Lending(Some(LendingParts {
            args,
            start,
            refresh,
        }))
    }

    /// The loader as the runtime takes it.
    pub fn as_loader(&mut self) -> &mut Self {
        self
    }

    fn start<SF>(&mut self) -> SF
    where
        S: FnOnce(A) -> SF,
    {
        let parts = take(&mut self.0);
        (parts.start)(parts.args)
    }

    fn route<DF>(&mut self) -> Refresh<DF>
    where
        D: FnOnce(A) -> Refresh<DF>,
    {
        let parts = take(&mut self.0);
        (parts.refresh)(parts.args)
    }
}

impl<R, A, S, SF, D, DF> Loader<R> for &mut Lending<A, S, D>
where
    S: FnOnce(A) -> SF,
    SF: Future<Output = R>,
    D: FnOnce(A) -> Refresh<DF>,
    DF: Future<Output = R>,
{
    type Load = SF;

    fn start(self) -> SF {
        Lending::start(self)
    }

    fn refresh<M: Mode<R> + 'static>(self, job: RefreshJob) -> impl Future<Output = ()> {
        let route = self.route();
        async move {
            match route {
                Refresh::Detached(refresh) => spawn_or_run(refresh.task(job)).await,
                Refresh::InCaller(load) => crate::fill::refresh::<R, M>(job, load).await,
            }
        }
    }
}

/// A [`Lending`] loader whose body runs as a `Send` future (on the caller's borrows and on owned
/// copies alike): served with its type erased, as a detached loader is.
#[derive(Debug)]
pub struct SendLending<A, S, D>(Lending<A, S, D>);

impl<A, S, D> SendLending<A, S, D> {
    /// The loader as the runtime takes it: type-erased.
    pub fn as_loader<'a, R>(&mut self) -> &mut (dyn Erased<'a, R> + '_)
    where
        Self: Erased<'a, R>,
    {
        self
    }
}

impl<'a, R, A, S, SF, D, DF> Erased<'a, R> for SendLending<A, S, D>
where
    A: Send,
    S: FnOnce(A) -> SF + Send,
    SF: Future<Output = R> + Send + 'a,
    D: FnOnce(A) -> Refresh<DF> + Send,
    DF: Future<Output = R> + Send + 'a,
{
    fn start(&mut self) -> Pin<Box<dyn Future<Output = R> + Send + 'a>> {
        Box::pin(self.0.start())
    }

    fn refresh(&mut self) -> ErasedRefresh<'a, R> {
        match self.0.route() {
            Refresh::Detached(refresh) => ErasedRefresh::Task(refresh),
            Refresh::InCaller(load) => ErasedRefresh::InCaller(Box::pin(load)),
        }
    }
}

/// Picks [`SendLending`] for a lending loader whose body's futures are `Send`, and the lending
/// loader as it is otherwise: `(&probe_lending(&lending)).erase()(lending)` with [`EraseLending`]
/// and [`KeepLending`] in scope. It asks about the sibling fns' futures, whose auto traits the
/// type checker knows, never about the closures of the caller's own body.
pub struct LendingProbe<L, SF, DF>(PhantomData<Probed<L, SF, DF>>);

/// What a [`LendingProbe`] looks at, without holding any of it.
type Probed<L, SF, DF> = fn() -> (L, SF, DF);

/// The probe for `lending`, with the futures of its body and of its refresh named.
pub fn probe_lending<A, S, SF, D, DF>(
    _lending: &Lending<A, S, D>,
) -> LendingProbe<Lending<A, S, D>, SF, DF>
where
    S: FnOnce(A) -> SF,
    D: FnOnce(A) -> Refresh<DF>,
{
    LendingProbe(PhantomData)
}

impl<L, SF, DF> std::fmt::Debug for LendingProbe<L, SF, DF> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LendingProbe")
    }
}

/// Picked when the body's futures, and what they return, are `Send`.
pub trait EraseLending<L> {
    /// The loader, wrapped: [`SendLending`].
    type Erased;
    /// Wraps the loader.
    fn erase(&self) -> fn(L) -> Self::Erased;
}

impl<A, S, SF, D, DF> EraseLending<Lending<A, S, D>> for LendingProbe<Lending<A, S, D>, SF, DF>
where
    SF: Future + Send,
    SF::Output: Send,
    DF: Future + Send,
{
    type Erased = SendLending<A, S, D>;

    fn erase(&self) -> fn(Lending<A, S, D>) -> SendLending<A, S, D> {
        SendLending
    }
}

/// Picked otherwise: the loader stays as it is.
pub trait KeepLending<L> {
    /// Keeps the loader.
    fn erase(&self) -> fn(L) -> L;
}

impl<L, SF, DF> KeepLending<L> for &LendingProbe<L, SF, DF> {
    fn erase(&self) -> fn(L) -> L {
        |lending| lending
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

//! The faults of the call being polled, for `on_cache_error = "fail"`: recorded where they happen,
//! deep in the engine, and read where the call decides what to return.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::{Arc, OnceLock};

use crate::error::Error;

thread_local! {
    /// The faults of the call being polled on this thread, while it runs with
    /// `on_cache_error = "fail"`: set around each poll of the call, as a task-local would be.
    static FAULTS: RefCell<Option<Arc<Faults>>> = const { RefCell::new(None) };
}

/// The first cache fault of one call.
#[derive(Default)]
pub(crate) struct Faults(OnceLock<Error>);

impl Faults {
    pub(crate) fn first(&self) -> Option<Error> {
        self.0.get().cloned()
    }
}

/// Runs `call` and, if a cache operation failed during it and `convert` is given, returns the
/// converted error instead of its outcome.
pub(crate) async fn failing_on_faults<R>(
    convert: Option<fn(Error) -> R>,
    call: impl Future<Output = R>,
) -> R {
    let faults = convert.map(|_| Arc::new(Faults::default()));
    let mut call = pin!(call);
    let outcome = poll_fn(|context| {
        let _scope = FaultScope::enter(faults.as_ref());
        call.as_mut().poll(context)
    })
    .await;
    match (convert, faults.and_then(|faults| faults.first())) {
        (Some(convert), Some(error)) => convert(error),
        _ => outcome,
    }
}

/// Makes `faults` the current call's while it lives, then restores the previous ones. Not
/// generic, unlike Tokio's task-locals, so that each cached function compiles none of it.
struct FaultScope {
    previous: Option<Arc<Faults>>,
}

impl FaultScope {
    fn enter(faults: Option<&Arc<Faults>>) -> Option<FaultScope> {
        let faults = Arc::clone(faults?);
        let previous = FAULTS
            .try_with(|current| current.replace(Some(faults)))
            .ok()?;
        Some(FaultScope { previous })
    }
}

impl Drop for FaultScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = FAULTS.try_with(|current| *current.borrow_mut() = previous);
    }
}

/// The first fault recorded so far in the current call (always `None` outside fail mode).
pub(crate) fn current_fault() -> Option<Error> {
    FAULTS
        .try_with(|faults| faults.borrow().as_ref().and_then(|faults| faults.first()))
        .ok()
        .flatten()
}

/// Records `error` for the current call, if it collects its faults.
pub(crate) fn note_fault(error: &Error) {
    let _ = FAULTS.try_with(|faults| {
        if let Some(faults) = &*faults.borrow() {
            let _ = faults.0.set(error.clone());
        }
    });
}

//! The global cache: embedded before any install, the installed one after.
//! One test in its own binary, since it changes process-wide state.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use cachemacro_runtime::{cached, Cache};

static LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = 60)]
async fn answer(question: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    question + 1
}

#[tokio::test]
async fn zero_setup_uses_an_embedded_cache_until_one_is_installed() {
    assert_eq!(answer(41).await, 42);
    assert_eq!(answer(41).await, 42);
    assert_eq!(
        LOADS.load(SeqCst),
        1,
        "the default embedded cache served the second call"
    );
    assert_eq!(answer(1).await, 2);
    assert_eq!(
        LOADS.load(SeqCst),
        2,
        "the default key includes the arguments"
    );

    let installed = Cache::memory();
    installed.install();
    assert_eq!(answer(41).await, 42);
    assert_eq!(LOADS.load(SeqCst), 3, "the installed cache starts empty");
    assert_eq!(answer(41).await, 42);
    let stats = installed.stats();
    assert_eq!((stats.loads, stats.hits), (1, 1));
}

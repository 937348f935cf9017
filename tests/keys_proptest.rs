//! Different arguments never share a cache entry: a key template (or the default key) renders
//! distinct argument lists to distinct keys, whatever the values contain (separators, `%`,
//! braces, unicode, nothing at all).
//!
//! Keys are observed through behaviour only: each function returns its own arguments, so a call
//! that was served another call's entry returns the other call's arguments.

use std::fmt::Debug;
use std::future::Future;

use cachemacro_runtime::{cached, Cache};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[cached(key = "pair:<a>:<b>", cache = cache)]
async fn pair(cache: Cache, a: String, b: String) -> (String, String) {
    (a, b)
}

#[cached(key = "t/<a>-/<b>/<c>", cache = cache)]
async fn triple(cache: Cache, a: String, b: String, c: String) -> (String, String, String) {
    (a, b, c)
}

#[cached(cache = cache)]
async fn default_key(cache: Cache, a: String, b: String) -> (String, String) {
    (a, b)
}

/// Values dense in what could confuse a key: separators, escapes and their hex digits, braces,
/// multi-byte characters, the empty string; and now and then any text at all.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a1-5A:%{}/._ é-]{0,5}",
        1 => any::<String>(),
    ]
}

/// Two argument pairs that spell the same text once joined by `separator`: a separator moved
/// from one argument into the other.
fn shifted_pairs(
    separator: &'static str,
) -> impl Strategy<Value = ((String, String), (String, String))> {
    (value(), value(), value()).prop_map(move |(a, b, c)| {
        let left = (format!("{a}{separator}{b}"), c.clone());
        let right = (a, format!("{b}{separator}{c}"));
        (left, right)
    })
}

/// Calls `call` with `first`, then `second`, on one fresh cache: the second call must run its own
/// body. A third call with `first` must hit, or the cache was not caching and the check proved
/// nothing.
fn assert_separate_entries<A, F, Fut>(call: F, first: A, second: A) -> Result<(), TestCaseError>
where
    A: Clone + PartialEq + Debug,
    F: Fn(Cache, A) -> Fut,
    Fut: Future<Output = A>,
{
    prop_assume!(first != second);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let cache = Cache::memory();
        prop_assert_eq!(call(cache.clone(), first.clone()).await, first.clone());
        prop_assert_eq!(
            call(cache.clone(), second.clone()).await,
            second,
            "served the entry of {:?}",
            first
        );
        let hits = cache.stats().hits;
        prop_assert_eq!(call(cache.clone(), first.clone()).await, first);
        prop_assert_eq!(cache.stats().hits, hits + 1, "the cache did not cache");
        Ok(())
    })
}

fn call_pair(cache: Cache, (a, b): (String, String)) -> impl Future<Output = (String, String)> {
    pair(cache, a, b)
}

fn call_triple(
    cache: Cache,
    (a, b, c): (String, String, String),
) -> impl Future<Output = (String, String, String)> {
    triple(cache, a, b, c)
}

fn call_default_key(
    cache: Cache,
    (a, b): (String, String),
) -> impl Future<Output = (String, String)> {
    default_key(cache, a, b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn template_pairs_never_share_an_entry(first in (value(), value()), second in (value(), value())) {
        assert_separate_entries(call_pair, first, second)?;
    }

    #[test]
    fn a_separator_moved_between_values_changes_the_key((first, second) in shifted_pairs(":")) {
        assert_separate_entries(call_pair, first, second)?;
    }

    #[test]
    fn template_triples_never_share_an_entry(
        first in (value(), value(), value()),
        second in (value(), value(), value()),
    ) {
        assert_separate_entries(call_triple, first, second)?;
    }

    #[test]
    fn a_separator_moved_inside_a_triple_changes_the_key((left, right) in shifted_pairs("-/"), c in value()) {
        let first = (left.0, left.1, c.clone());
        let second = (right.0, right.1, c);
        assert_separate_entries(call_triple, first, second)?;
    }

    #[test]
    fn default_key_pairs_never_share_an_entry(first in (value(), value()), second in (value(), value())) {
        assert_separate_entries(call_default_key, first, second)?;
    }

    #[test]
    fn a_separator_moved_between_default_key_values_changes_the_key((first, second) in shifted_pairs(":")) {
        assert_separate_entries(call_default_key, first, second)?;
    }
}

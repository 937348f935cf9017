//! Cache-aside: the entry points the generated code calls, and the hit path.
//!
//! A read finds one of three things:
//! - a fresh entry: returned; with early refresh on, XFetch may also start one refresh;
//! - an entry past its ttl but inside its `stale` window: returned, and one refresh starts;
//! - nothing usable: a miss, handled in [`crate::fill`].
//!
//! Every backend fault is counted and swallowed: the caller of a cached function always gets a
//! value from the cache or from its own body, never a cache error.

use serde::{de::DeserializeOwned, Serialize};

use crate::backend::{Backend, Found};
use crate::cache::{with_backend, Cache, Store};
use crate::call::Call;
use crate::envelope::{self, Envelope};
use crate::error::Error;
use crate::fill::fill;
use crate::key::Key;
use crate::loader::Loader;
use crate::outcome::{Mode, OptionMode, PlainMode, ResultMode, Sharing};
use crate::policy::Policy;
use crate::resilience::{current_fault, failing_on_faults, Failure};

/// Cache-aside for a function returning a plain value: every value is stored.
pub async fn cached_value<T, L>(
    cache: &Cache,
    key: &str,
    tags: &[Key],
    policy: &Policy,
    loader: L,
    sharing: Sharing<T>,
    failure: Failure<T>,
) -> T
where
    T: Serialize + DeserializeOwned + 'static,
    L: Loader<T>,
{
    cached::<T, PlainMode, L>(cache, key, tags, policy, loader, sharing, failure).await
}

/// Cache-aside for a function returning `Result`: `Ok` values are stored, errors returned as is.
pub async fn cached_result<T, E, L>(
    cache: &Cache,
    key: &str,
    tags: &[Key],
    policy: &Policy,
    loader: L,
    sharing: Sharing<Result<T, E>>,
    failure: Failure<Result<T, E>>,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned + 'static,
    E: 'static,
    L: Loader<Result<T, E>>,
{
    cached::<Result<T, E>, ResultMode, L>(cache, key, tags, policy, loader, sharing, failure).await
}

/// Cache-aside for a function returning `Option`: `Some` is stored for the ttl, `None` for the
/// negative ttl (against lookups of absent rows hammering the database) unless that is off.
pub async fn cached_option<T, L>(
    cache: &Cache,
    key: &str,
    tags: &[Key],
    policy: &Policy,
    loader: L,
    sharing: Sharing<Option<T>>,
    failure: Failure<Option<T>>,
) -> Option<T>
where
    T: Serialize + DeserializeOwned + 'static,
    L: Loader<Option<T>>,
{
    cached::<Option<T>, OptionMode, L>(cache, key, tags, policy, loader, sharing, failure).await
}

async fn cached<R, M, L>(
    cache: &Cache,
    key: &str,
    tags: &[Key],
    policy: &Policy,
    loader: L,
    sharing: Sharing<R>,
    failure: Failure<R>,
) -> R
where
    M: Mode<R> + 'static,
    L: Loader<R>,
{
    let call = Call::new(cache, key, tags, policy);
    // Awaited directly unless faults must be collected: wrapping the call's future in the
    // fault scope would move it, kilobytes on every hit, for a mode few functions use.
    match failure.converter(cache, policy) {
        None => serve::<R, M, L>(&call, loader, &sharing, None).await,
        Some(convert) => {
            let served = serve::<R, M, L>(&call, loader, &sharing, Some(convert));
            failing_on_faults(Some(convert), served).await
        }
    }
}

/// The hit path, and the miss path on a miss. With `on_cache_error = "fail"`, a read that failed
/// ends the call before the body runs: its error is what the call returns.
async fn serve<R, M, L>(
    call: &Call<'_>,
    mut loader: L,
    sharing: &Sharing<R>,
    convert: Option<fn(Error) -> R>,
) -> R
where
    M: Mode<R> + 'static,
    L: Loader<R>,
{
    loop {
        let read = read::<M::Value>(call).await;
        let offline = match read {
            Read::Fresh(value) => return M::from_value(value),
            Read::Restored(value, ttl) => {
                // A sliding read restarted the entry at the function's ttl; one stored for less
                // (a cached `None` lives its `negative_ttl`) is put back to its own.
                let shortened = with_backend!(&call.cache.inner.store, backend => backend.shorten(call.key, ttl).await);
                if let Err(error) = shortened {
                    call.cache.record_fault(&error);
                }
                return M::from_value(value);
            }
            Read::Refresh(value, why) => {
                let cache = call.cache;
                if let Some(claim) = cache.inner.flights.claim_refresh(call.key) {
                    match why {
                        Why::Early => cache.inner.counters.early_refresh(),
                        Why::Stale => cache.inner.counters.stale_refresh(),
                    }
                    let (key, tags) = (call.key.to_owned(), call.tags.to_vec());
                    // Boxed, as the miss path below: see there.
                    Box::pin(loader.refresh::<M>(cache, key, tags, *call.policy, claim)).await;
                }
                return M::from_value(value);
            }
            Read::Miss => false,
            Read::Down => true,
        };
        if let (Some(convert), Some(error)) = (convert, current_fault()) {
            return convert(error);
        }
        // The miss path's future is several kilobytes (locks, waits, the load itself). Inline,
        // it would make every call's future that size, and a hit would pay for moving it; boxed,
        // it costs one allocation per miss, next to a database load.
        match Box::pin(fill::<R, M, L>(call, loader, sharing, offline)).await {
            Ok(outcome) => return outcome,
            // The load this call waited for may predate an invalidation: read again.
            Err(returned) => loader = returned,
        }
    }
}

enum Read<V> {
    Fresh(V),
    /// A sliding hit on an entry whose own ttl is shorter than the one the read restarted.
    Restored(V, std::time::Duration),
    /// A hit that should also refresh the entry.
    Refresh(V, Why),
    Miss,
    /// The backend is unreachable, slow or behind an open breaker: a miss that should not
    /// spend more cache operations (each would cost up to the operation timeout).
    Down,
}

#[derive(Clone, Copy)]
enum Why {
    /// Drawn by XFetch before the entry expired.
    Early,
    /// The entry is past its ttl, inside its stale window.
    Stale,
}

/// The usable value under the call's key, counting the hit or miss; faults and bad entries are
/// misses. One round trip: `GET` (pipelined with a `GET` of each tag's epoch for a tagged
/// function), or
/// `GETEX` for a sliding ttl.
async fn read<V: DeserializeOwned>(call: &Call<'_>) -> Read<V> {
    let cache = call.cache;
    let counters = &cache.inner.counters;
    let touch = call.policy.sliding.then(|| call.ttl());
    let read = with_backend!(&cache.inner.store, backend => {
        match backend.read(call.key, call.tags, touch).await {
            Ok(Found { entry: Some(bytes), epochs }) => judge(call, bytes.as_ref(), &epochs),
            Ok(Found { entry: None, .. }) => Read::Miss,
            Err(error) => {
                cache.record_fault(&error);
                tracing::debug!(%error, "cache read failed; loading instead");
                if error.is_unavailable() {
                    Read::Down
                } else {
                    Read::Miss
                }
            }
        }
    });
    match read {
        Read::Miss | Read::Down => counters.miss(),
        Read::Fresh(_) | Read::Restored(..) | Read::Refresh(..) => counters.hit(),
    }
    read
}

fn judge<V: DeserializeOwned>(call: &Call<'_>, bytes: &[u8], epochs: &[Option<u64>]) -> Read<V> {
    let counters = &call.cache.inner.counters;
    let policy = call.policy;
    let decoded = envelope::decode(bytes).and_then(|envelope| Ok((envelope, envelope.value()?)));
    let (envelope, value) = match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            counters.decode_error();
            tracing::debug!(%error, "undecodable cache entry; it will be overwritten");
            return Read::Miss;
        }
    };
    // Stamped before one of its tags was invalidated (or its epoch evicted): the entry may
    // predate the change that invalidation announced.
    if !envelope.stamps.match_epochs(call.tag_names(), epochs) {
        return Read::Miss;
    }
    // A sliding entry lives as long as it is read: only the backend's ttl says when it ends.
    if policy.sliding || envelope.sliding {
        if policy.sliding && envelope.ttl() < call.ttl() {
            return Read::Restored(value, envelope.ttl());
        }
        return Read::Fresh(value);
    }
    let now = envelope::now_ms();
    if !envelope.is_expired_at(now) {
        if policy.early_refresh && draws_early_refresh(&envelope, now, policy.beta) {
            return Read::Refresh(value, Why::Early);
        }
        return Read::Fresh(value);
    }
    match policy.stale {
        Some(window)
            if now
                < envelope
                    .expires_at_ms
                    .saturating_add(window.as_millis() as u64) =>
        {
            counters.stale_hit();
            Read::Refresh(value, Why::Stale)
        }
        _ => Read::Miss,
    }
}

/// XFetch (Vattani, Chierichetti, Lowenstein, VLDB 2015): refresh when
/// `now - delta * beta * ln(rand) >= expiry`, with `delta` the last load time and `rand` in
/// (0, 1]. The closer the expiry and the slower the load, the likelier; so with many readers one
/// of them refreshes shortly before expiry, and nobody ever finds the entry missing.
fn draws_early_refresh(envelope: &Envelope<'_>, now_ms: u64, beta: f64) -> bool {
    if envelope.load_micros == 0 {
        return false;
    }
    let delta_ms = f64::from(envelope.load_micros) / 1000.0;
    let remaining_ms = envelope.expires_at_ms.saturating_sub(now_ms) as f64;
    // `-ln(rand)` never exceeds ln(2^53) < 37 for a 53-bit draw: far from expiry no draw can
    // succeed, so the hit path skips the random number and the logarithm.
    if remaining_ms > MAX_LN_DRAW * delta_ms * beta {
        return false;
    }
    let draw = 1.0 - rand::random::<f64>();
    now_ms as f64 - delta_ms * beta * draw.ln() >= envelope.expires_at_ms as f64
}

/// The largest `-ln(rand)` for `rand` in (0, 1] drawn with 53 bits: `53 * ln(2) ≈ 36.7`.
const MAX_LN_DRAW: f64 = 37.0;

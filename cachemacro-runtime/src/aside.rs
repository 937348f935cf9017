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

use crate::backend::Backend;
use crate::cache::{with_backend, Cache, Store};
use crate::envelope::{self, Envelope};
use crate::error::Error;
use crate::fill::fill;
use crate::loader::Loader;
use crate::outcome::{Mode, OptionMode, PlainMode, ResultMode, Sharing};
use crate::policy::Policy;
use crate::resilience::{current_fault, failing_on_faults, Failure};

/// Cache-aside for a function returning a plain value: every value is stored.
pub async fn cached_value<T, L>(
    cache: &Cache,
    key: String,
    tags: &[String],
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
    key: String,
    tags: &[String],
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
    key: String,
    tags: &[String],
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
    key: String,
    tags: &[String],
    policy: &Policy,
    loader: L,
    sharing: Sharing<R>,
    failure: Failure<R>,
) -> R
where
    M: Mode<R> + 'static,
    L: Loader<R>,
{
    let convert = failure.converter(cache, policy);
    let served = serve::<R, M, L>(cache, key, tags, policy, loader, &sharing, convert);
    failing_on_faults(convert, served).await
}

/// The hit path, and the miss path on a miss. With `on_cache_error = "fail"`, a read that failed
/// ends the call before the body runs: its error is what the call returns.
async fn serve<R, M, L>(
    cache: &Cache,
    key: String,
    tags: &[String],
    policy: &Policy,
    loader: L,
    sharing: &Sharing<R>,
    convert: Option<fn(Error) -> R>,
) -> R
where
    M: Mode<R> + 'static,
    L: Loader<R>,
{
    match read::<M::Value>(cache, &key, policy).await {
        Read::Fresh(value) => M::from_value(value),
        Read::Refresh(value, why) => {
            if let Some(claim) = cache.inner.flights.claim_refresh(&key) {
                match why {
                    Why::Early => cache.inner.counters.early_refresh(),
                    Why::Stale => cache.inner.counters.stale_refresh(),
                }
                let tags = tags.to_vec();
                loader.refresh::<M>(cache, key, tags, *policy, claim).await;
            }
            M::from_value(value)
        }
        read @ (Read::Miss | Read::Down) => {
            if let (Some(convert), Some(error)) = (convert, current_fault()) {
                return convert(error);
            }
            let offline = matches!(read, Read::Down);
            fill::<R, M, L>(cache, &key, tags, policy, loader, sharing, offline).await
        }
    }
}

enum Read<V> {
    Fresh(V),
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

/// The usable value under `key`, counting the hit or miss; faults and bad entries are misses.
/// One round trip: `GET`, or `GETEX` for a sliding ttl.
async fn read<V: DeserializeOwned>(cache: &Cache, key: &str, policy: &Policy) -> Read<V> {
    let counters = &cache.inner.counters;
    let read = with_backend!(&cache.inner.store, backend => {
        let found = if policy.sliding {
            backend.get_and_touch(key, cache.fresh_ttl(policy)).await
        } else {
            backend.get(key).await
        };
        match found {
            Ok(Some(bytes)) => judge(cache, bytes.as_ref(), policy),
            Ok(None) => Read::Miss,
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
        Read::Fresh(_) | Read::Refresh(..) => counters.hit(),
    }
    read
}

fn judge<V: DeserializeOwned>(cache: &Cache, bytes: &[u8], policy: &Policy) -> Read<V> {
    let counters = &cache.inner.counters;
    let decoded = envelope::decode(bytes).and_then(|envelope| Ok((envelope, envelope.value()?)));
    let (envelope, value) = match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            counters.decode_error();
            tracing::debug!(%error, "undecodable cache entry; it will be overwritten");
            return Read::Miss;
        }
    };
    // A sliding entry lives as long as it is read: only the backend's ttl says when it ends.
    if policy.sliding {
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

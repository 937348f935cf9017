//! Cache-aside: a call's loop, and the hit path.
//!
//! A read finds one of three things:
//! - a fresh entry: returned; with early refresh on, XFetch may also start one refresh;
//! - an entry past its ttl but inside its `stale` window: returned, and one refresh starts;
//! - nothing usable: a miss, handled in [`crate::fill`].
//!
//! Every backend fault is counted and swallowed: the caller of a cached function always gets a
//! value from the cache or from its own body, never a cache error.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::backend::{Backend, Found};
use crate::call::{Call, Request};
use crate::codec;
use crate::core::{with_backend, Core, Step, Store};
use crate::envelope::{self, Envelope};
use crate::error::Error;
use crate::failure::Failure;
use crate::faults::{current_fault, failing_on_faults};
use crate::fill::{join, load, Joined, RefreshJob};
use crate::key::Key;
use crate::loader::Loader;
use crate::near::{Near, Noted, Offer};
use crate::outcome::{Mode, Sharing};
use crate::policy::Policy;

/// The call's future. Awaited directly unless faults must be collected: the fault scope moves
/// the call's future into a wrapper, and a future that large costs every hit its copy (about
/// 250 instructions), for a mode few functions use. With an erased loader (see `loader.rs`),
/// this and [`serve`] are shared by every function that returns the same type.
pub(crate) async fn cached<R, M, L>(
    core: &Arc<Core>,
    key: &str,
    tags: &[Key],
    policy: &Policy,
    loader: L,
    sharing: Sharing<R>,
    failure: Failure<R>,
) -> R
where
    R: 'static,
    M: Mode<R> + 'static,
    L: Loader<R>,
{
    let convert = failure.converter(core.on_cache_error, policy);
    let request = Request {
        call: Call::new(core, key, tags, policy),
        sharing,
        convert,
    };
    match convert {
        None => serve::<R, M, L>(request, loader).await,
        Some(_) => failing_on_faults(convert, serve::<R, M, L>(request, loader)).await,
    }
}

/// The hit path, and the miss path on a miss. With `on_cache_error = "fail"`, a read that failed
/// ends the call before the body runs: its error is what the call returns.
///
/// This loop and the decoding of the value are all of the hit path that is generic: the read
/// itself is not. The loop is generic over the loader, which for an erased one (see
/// `loader.rs`) leaves it shared by every function that returns the same type.
async fn serve<R, M, L>(request: Request<'_, R>, loader: L) -> R
where
    M: Mode<R> + 'static,
    L: Loader<R>,
{
    let Request {
        call,
        sharing,
        convert,
    } = &request;
    let near = near_for(call, sharing);
    loop {
        let mut noted = None;
        if let Some(near) = near {
            if let Some(outcome) = near.get(call.key).and_then(|kept| sharing.unshare(&*kept)) {
                call.count_hit();
                return outcome;
            }
            noted = Some(near.before_read(call.key, call.tags.iter().map(Key::as_str)));
        }
        let read = read(call).await;
        let offline = match read.verdict {
            Verdict::Miss => false,
            Verdict::Down => true,
            verdict => match read.value::<M::Value>(call) {
                None => false,
                Some(value) => {
                    let outcome = M::from_value(value);
                    if let (Some(near), Some(noted)) = (near, noted) {
                        offer(near, call, noted, &read, &outcome, sharing);
                    }
                    match verdict {
                        // A sliding read restarted the entry at the function's ttl; one stored
                        // for less (a cached `None` lives its `negative_ttl`) is put back to its
                        // own.
                        Verdict::Restored(ttl) => restore(call, ttl).await,
                        Verdict::Refresh(why) => {
                            if let Some(job) = claim_refresh(call, why) {
                                // Boxed, as the miss path below: see there.
                                Box::pin(loader.refresh::<M>(job)).await;
                            }
                        }
                        _ => {}
                    }
                    return outcome;
                }
            },
        };
        if let (Some(convert), Some(error)) = (convert, current_fault()) {
            return convert(error);
        }
        let fill = match join::<R, M>(call, sharing, offline).await {
            Joined::Outcome(outcome) => {
                if let Some(near) = near {
                    near.loaded(call.key);
                }
                return outcome;
            }
            // The load this call waited for may predate an invalidation: read again.
            Joined::Reread => continue,
            Joined::Load(fill) => fill,
        };
        // The load's future can be several kilobytes (the body, the store). Inline, it would
        // make every call's future that size, and a hit would pay for moving it; boxed, it costs
        // one allocation per miss, next to a database load.
        let outcome = Box::pin(load::<R, M, L::Load>(fill, loader.start(), sharing)).await;
        if let Some(near) = near {
            near.loaded(call.key);
        }
        return outcome;
    }
}

/// The near cache, when this call may use it: the cache has one, the return type is `Clone`
/// (a hit hands out a clone) and the ttl is not sliding (a hit must restart it in Redis).
fn near_for<'a, R>(call: &Call<'a>, sharing: &Sharing<R>) -> Option<&'a Near> {
    call.core
        .near
        .as_ref()
        .filter(|_| !call.policy.sliding && sharing.clones())
}

/// Offers what a Redis read found to the near cache: kept when fresh, until the entry's
/// [`Read::near_until`]; in any case noted as this process's latest read of the key.
fn offer<R>(
    near: &Near,
    call: &Call<'_>,
    noted: Noted,
    read: &Read,
    outcome: &R,
    sharing: &Sharing<R>,
) {
    let keep = matches!(read.verdict, Verdict::Fresh);
    let fresh_for = read.near_until.saturating_sub(envelope::now_ms());
    let value = keep.then(|| sharing.share(outcome)).flatten();
    let bytes = match &read.bytes {
        Bytes::None => &[][..],
        Bytes::Shared(bytes) => bytes,
        Bytes::Owned(bytes) => bytes,
    };
    near.after_read(
        call.key,
        noted,
        Offer {
            value,
            fresh_for: std::time::Duration::from_millis(fresh_for),
            bytes,
        },
    );
}

/// What a read found under the call's key, its value not yet decoded.
struct Read {
    verdict: Verdict,
    /// The entry, as the backend returned it: empty for a miss.
    bytes: Bytes,
    /// Where the entry's payload starts.
    payload: usize,
    /// How the payload is serialized and compressed: the envelope's codec byte.
    codec: u8,
    /// Until when (ms since the epoch) the near cache may serve the entry; 0 for never.
    near_until: u64,
}

#[derive(Clone, Copy)]
enum Verdict {
    Fresh,
    /// A sliding hit on an entry whose own ttl is shorter than the one the read restarted.
    Restored(std::time::Duration),
    /// A hit that should also refresh the entry.
    Refresh(Why),
    Miss,
    /// The backend is unreachable, slow or behind an open breaker: a miss that should not
    /// spend more cache operations (each would cost up to the operation timeout).
    Down,
}

impl Verdict {
    /// What a read found, as its span records it.
    fn outcome(self) -> &'static str {
        match self {
            Verdict::Fresh | Verdict::Restored(_) | Verdict::Refresh(Why::Early) => "hit",
            Verdict::Refresh(Why::Stale) => "stale",
            Verdict::Miss => "miss",
            Verdict::Down => "unavailable",
        }
    }
}

#[derive(Clone, Copy)]
enum Why {
    /// Drawn by XFetch before the entry expired.
    Early,
    /// The entry is past its ttl, inside its stale window.
    Stale,
}

/// An entry's bytes, in whichever form its backend returned them.
enum Bytes {
    None,
    Shared(Arc<[u8]>),
    Owned(Vec<u8>),
}

impl From<Arc<[u8]>> for Bytes {
    fn from(bytes: Arc<[u8]>) -> Self {
        Bytes::Shared(bytes)
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes::Owned(bytes)
    }
}

impl Read {
    fn nothing(verdict: Verdict) -> Self {
        Read {
            verdict,
            bytes: Bytes::None,
            payload: 0,
            codec: 0,
            near_until: 0,
        }
    }

    /// The entry's value, counting the hit; an entry that does not decode as `V` is counted
    /// as a miss.
    fn value<V: DeserializeOwned>(&self, call: &Call<'_>) -> Option<V> {
        let entry = match &self.bytes {
            Bytes::None => &[][..],
            Bytes::Shared(bytes) => bytes,
            Bytes::Owned(bytes) => bytes,
        };
        let decoded = codec::decode(self.codec, &entry[self.payload..]);
        count(call, &self.verdict, decoded.as_ref().err());
        decoded.ok()
    }
}

/// Counts a read whose entry was usable: a hit, or a miss when its value failed to decode.
fn count(call: &Call<'_>, verdict: &Verdict, undecodable: Option<&Error>) {
    if let Some(error) = undecodable {
        call.count_decode_error();
        call.count_miss();
        tracing::debug!(%error, "undecodable cache entry; it will be overwritten");
        return;
    }
    if let Verdict::Refresh(Why::Stale) = verdict {
        call.count_stale_hit();
    }
    call.count_hit();
}

/// The entry under the call's key and what it is worth; reads that find nothing usable (faults
/// and bad entries included) are counted as misses here, the others once their value decoded.
/// One round trip: `GET` (pipelined with a `GET` of each tag's epoch for a tagged function), or
/// `GETEX` for a sliding ttl.
async fn read(call: &Call<'_>) -> Read {
    if tracing::level_enabled!(tracing::Level::DEBUG) {
        return read_in_span(call).await;
    }
    read_entry(call).await
}

/// [`read_entry`] in a `cache.read` span. Apart and boxed: a span held across the read, even a
/// disabled one, costs a hit some 570 instructions (callgrind, 64 tasks), so a hit pays it only
/// when a subscriber may want debug spans.
fn read_in_span<'a>(call: &'a Call<'a>) -> Step<'a, Read> {
    Box::pin(async move {
        let span = tracing::debug_span!(
            "cache.read",
            function = call.function_name(),
            outcome = tracing::field::Empty,
        );
        let read = read_entry(call).instrument(span.clone()).await;
        span.record("outcome", read.verdict.outcome());
        read
    })
}

async fn read_entry(call: &Call<'_>) -> Read {
    let core = call.core;
    let touch = call.policy.sliding.then(|| call.ttl());
    let read = with_backend!(&core.store, backend => {
        match backend.read(call.key, call.tags, touch).await {
            Ok(Found { entry: Some(bytes), epochs }) => {
                let (verdict, payload, codec, near_until) = judge(call, bytes.as_ref(), &epochs);
                Read { verdict, bytes: bytes.into(), payload, codec, near_until }
            }
            Ok(Found { entry: None, .. }) => Read::nothing(Verdict::Miss),
            Err(error) => {
                call.record_fault(&error);
                tracing::debug!(%error, "cache read failed; loading instead");
                Read::nothing(if error.is_unavailable() {
                    Verdict::Down
                } else {
                    Verdict::Miss
                })
            }
        }
    });
    if let Verdict::Miss | Verdict::Down = read.verdict {
        call.count_miss();
    }
    read
}

/// What an entry is worth, where its payload starts, its codec byte, and until when the near
/// cache may serve it.
fn judge(call: &Call<'_>, bytes: &[u8], epochs: &[Option<u64>]) -> (Verdict, usize, u8, u64) {
    let policy = call.policy;
    let envelope = match envelope::decode(bytes) {
        Ok(envelope) => envelope,
        Err(error) => {
            call.count_decode_error();
            tracing::debug!(%error, "undecodable cache entry; it will be overwritten");
            return (Verdict::Miss, 0, 0, 0);
        }
    };
    // Written with another codec or compression (the function's changed, or another function
    // shares the key): a miss, which the fill overwrites, rather than bytes read the wrong way.
    if !envelope.is_read_by(&call.encoding()) {
        call.core.counters.decode_error();
        tracing::debug!(
            codec = envelope.codec,
            "cache entry of another codec; it will be overwritten"
        );
        return (Verdict::Miss, 0, 0, 0);
    }
    let near_until = match call.core.near {
        Some(_) => near_until(&envelope, policy),
        None => 0,
    };
    let payload = bytes.len() - envelope.payload.len();
    let verdict = 'verdict: {
        // Stamped before one of its tags was invalidated (or its epoch evicted): the entry may
        // predate the change that invalidation announced.
        if !envelope.stamps.match_epochs(call.tag_names(), epochs) {
            break 'verdict Verdict::Miss;
        }
        // A sliding entry lives as long as it is read: only the backend's ttl says when it ends.
        if policy.sliding || envelope.sliding {
            if policy.sliding && envelope.ttl() < call.ttl() {
                break 'verdict Verdict::Restored(envelope.ttl());
            }
            break 'verdict Verdict::Fresh;
        }
        let now = envelope::now_ms();
        if !envelope.is_expired_at(now) {
            if policy.early_refresh && draws_early_refresh(&envelope, now, policy.beta) {
                break 'verdict Verdict::Refresh(Why::Early);
            }
            break 'verdict Verdict::Fresh;
        }
        match policy.stale {
            Some(window)
                if now
                    < envelope
                        .expires_at_ms
                        .saturating_add(window.as_millis() as u64) =>
            {
                Verdict::Refresh(Why::Stale)
            }
            _ => Verdict::Miss,
        }
    };
    (verdict, payload, envelope.codec, near_until)
}

/// Until when the near cache may serve an entry: its expiry, less the window in which XFetch
/// may draw an early refresh (reads in that window go to Redis, so one of them refreshes the
/// entry before it expires); never for a sliding entry.
fn near_until(envelope: &Envelope<'_>, policy: &Policy) -> u64 {
    if envelope.sliding {
        return 0;
    }
    let window = match policy.early_refresh {
        true => MAX_LN_DRAW * f64::from(envelope.load_micros) / 1000.0 * policy.beta,
        false => 0.0,
    };
    envelope.expires_at_ms.saturating_sub(window as u64)
}

/// Puts a restored sliding entry back to its own ttl. Boxed, as the miss path: it is compiled
/// once, here, and costs an allocation next to a round trip.
fn restore<'a>(call: &'a Call<'a>, ttl: std::time::Duration) -> Step<'a, ()> {
    Box::pin(async move {
        let shortened =
            with_backend!(&call.core.store, backend => backend.shorten(call.key, ttl).await);
        if let Err(error) = shortened {
            call.record_fault(&error);
        }
    })
}

/// Claims the refresh of the call's entry for this caller, counting why it was drawn; `None`
/// when one is already running in this process.
fn claim_refresh(call: &Call<'_>, why: Why) -> Option<RefreshJob> {
    let core = call.core;
    let claim = core.flights.claim_refresh(call.key)?;
    match why {
        Why::Early => call.count_early_refresh(),
        Why::Stale => core.counters.stale_refresh(),
    }
    Some(RefreshJob::new(call, claim))
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    use std::time::Duration;

    use super::*;
    use crate::loader::InCaller;
    use crate::outcome::PlainMode;

    /// A call of a function whose body counts its runs in `loads` and returns their number.
    async fn call(core: &Arc<Core>, tags: &[Key], policy: &Policy, loads: &AtomicU64) -> u64 {
        let key = core.full_key("k");
        let mut loader = InCaller::new(|| async { loads.fetch_add(1, SeqCst) + 1 });
        cached::<u64, PlainMode, _>(
            core,
            &key,
            tags,
            policy,
            loader.as_loader(),
            Sharing::nothing(),
            Failure::never(),
        )
        .await
    }

    #[tokio::test]
    async fn a_miss_loads_and_the_next_call_hits() {
        let core = Core::for_tests();
        let loads = AtomicU64::new(0);
        let policy = Policy::new();
        assert_eq!(call(&core, &[], &policy, &loads).await, 1);
        assert_eq!(call(&core, &[], &policy, &loads).await, 1);
        let stats = core.stats();
        assert_eq!((stats.hits, stats.misses, stats.loads), (1, 1, 1));
    }

    #[tokio::test]
    async fn an_entry_of_an_invalidated_tag_is_a_miss() {
        let core = Core::for_tests();
        let loads = AtomicU64::new(0);
        let policy = Policy::new();
        let tags = [core.tag_key("org:1")];
        assert_eq!(call(&core, &tags, &policy, &loads).await, 1);
        crate::invalidate::invalidate_tag(&core, "org:1")
            .await
            .expect("invalidated");
        assert_eq!(call(&core, &tags, &policy, &loads).await, 2);
        assert_eq!(call(&core, &tags, &policy, &loads).await, 2);
    }

    #[tokio::test]
    async fn an_undecodable_entry_is_a_counted_miss() {
        let core = Core::for_tests();
        let loads = AtomicU64::new(0);
        let policy = Policy::new();
        let key = core.full_key("k");
        crate::write::set(
            &core,
            &key,
            Arc::from(&b"garbage"[..]),
            Duration::from_secs(60),
        )
        .await
        .expect("set");
        assert_eq!(call(&core, &[], &policy, &loads).await, 1);
        assert_eq!(core.stats().decode_errors, 1);
        assert_eq!(call(&core, &[], &policy, &loads).await, 1, "overwritten");
    }

    #[tokio::test]
    async fn a_stale_hit_is_served_and_refreshed() {
        let core = Core::for_tests();
        let loads = AtomicU64::new(0);
        let policy = Policy::new()
            .ttl(Duration::from_millis(1))
            .stale(Duration::from_secs(60));
        assert_eq!(call(&core, &[], &policy, &loads).await, 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            call(&core, &[], &policy, &loads).await,
            1,
            "the stale value, at once"
        );
        assert_eq!(loads.load(SeqCst), 2, "and the refresh ran in the caller");
        let stats = core.stats();
        assert_eq!((stats.stale_hits, stats.stale_refreshes), (1, 1));
    }
}

//! Client tracking: a dedicated RESP3 connection with `CLIENT TRACKING ON BCAST PREFIX
//! <prefix>`, whose `invalidate` pushes drop the near cache's entries.
//!
//! BCAST rather than the default mode: the server then pushes every change under the prefix to
//! this connection, whichever connection read the key, so the commands of the hit path stay on
//! the ordinary connection (RESP2, unchanged) and nothing has to be redirected. `NOLOOP` would
//! only silence writes made on the tracking connection itself, which makes none: this process's
//! own writes (on its ordinary connection) come back as pushes too, which costs a stripe bump
//! each and no correctness (the process drops its entries itself when its commands return).
//!
//! A session starts once the server acknowledged `CLIENT TRACKING`, and ends when the
//! connection is lost (redis-rs pushes a disconnection), when a `PING` sent every
//! [`PING_EVERY`] gets no answer within [`PING_TIMEOUT`], or when the cache is dropped. Between
//! sessions the near cache serves nothing; the task reconnects with a capped backoff.

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::{Near, Shared};
use crate::backend::{MAX_DELAY, MIN_DELAY};

/// How often the tracking connection is checked with a `PING` when no push arrives.
const PING_EVERY: Duration = Duration::from_millis(250);
/// How long a `PING` may take before the connection is taken for lost.
const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Starts tracking the keys under `prefix` for `near`, with `client` (its connection info is
/// switched to RESP3), in a task that ends with the near cache.
pub(crate) fn spawn(near: &Near, client: &redis::Client, prefix: String, connect: Duration) {
    let info = client.get_connection_info().clone();
    let redis = info.redis_settings().clone();
    let info = info.set_redis_settings(redis.set_protocol(redis::ProtocolVersion::RESP3));
    let Ok(client) = redis::Client::open(info) else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let near = Arc::downgrade(&near.shared);
    runtime.spawn(track(near, client, prefix, connect));
}

async fn track(near: Weak<Shared>, client: redis::Client, prefix: String, connect: Duration) {
    let mut pause = MIN_DELAY;
    loop {
        if near.strong_count() == 0 {
            return;
        }
        let (sender, pushes) = unbounded_channel();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect))
            .set_response_timeout(Some(PING_TIMEOUT))
            .set_push_sender(sender);
        match start(&client, config, &prefix).await {
            Ok(connection) => {
                pause = MIN_DELAY;
                let Some(shared) = near.upgrade() else { return };
                shared.start_session();
                drop(shared);
                follow(&near, connection, pushes).await;
                if let Some(shared) = near.upgrade() {
                    shared.end_session();
                    tracing::debug!("near cache: tracking lost; serving nothing until it is back");
                }
            }
            Err(error) => {
                tracing::debug!(%error, "near cache: tracking not started; retrying");
                let jitter = rand::random_range(0.5..1.0);
                tokio::time::sleep(pause.mul_f64(jitter)).await;
                pause = (pause * 2).min(MAX_DELAY);
            }
        }
    }
}

/// Connects and turns tracking on; the connection once the server acknowledged it.
async fn start(
    client: &redis::Client,
    config: AsyncConnectionConfig,
    prefix: &str,
) -> redis::RedisResult<MultiplexedConnection> {
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut tracking = redis::cmd("CLIENT");
    tracking.arg("TRACKING").arg("ON").arg("BCAST");
    if !prefix.is_empty() {
        tracking.arg("PREFIX").arg(prefix);
    }
    tracking.query_async::<()>(&mut connection).await?;
    Ok(connection)
}

/// Applies pushes until the connection is lost or the near cache dropped.
async fn follow(
    near: &Weak<Shared>,
    mut connection: MultiplexedConnection,
    mut pushes: UnboundedReceiver<PushInfo>,
) {
    loop {
        let push = tokio::select! {
            push = pushes.recv() => push,
            () = tokio::time::sleep(PING_EVERY) => {
                let ping = redis::cmd("PING");
                match tokio::time::timeout(PING_TIMEOUT, ping.query_async::<()>(&mut connection)).await {
                    Ok(Ok(())) => continue,
                    _ => return,
                }
            }
        };
        let Some(push) = push else { return };
        let Some(shared) = near.upgrade() else { return };
        match push.kind {
            PushKind::Invalidate => invalidate(&shared, push.data),
            PushKind::Disconnection => return,
            _ => {}
        }
    }
}

/// An `invalidate` push: the keys it names, or nil when the server flushed its keys.
fn invalidate(shared: &Shared, data: Vec<Value>) {
    match data.into_iter().next() {
        Some(Value::Array(keys)) => {
            for key in keys {
                if let Value::BulkString(bytes) = key {
                    shared.pushed(&String::from_utf8_lossy(&bytes));
                }
            }
        }
        _ => shared.flushed(),
    }
}

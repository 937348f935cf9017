//! One suite, three backends: every behaviour here must hold for the embedded store, a real
//! `redis-server` and a real Redis Cluster (3 masters, 3 replicas) alike.
//!
//! Each case on a single server gets a server of its own. The cluster takes a few seconds to
//! make, so the cases share one, made by the first of them and stopped when the test binary
//! exits; they take turns on it, each on a flushed cluster, since they name the same keys.

use std::sync::Mutex;
use std::time::Duration;

use cachemacro_runtime::backend::{Backend, MemoryBackend, RedisBackend};
use cachemacro_runtime::{Cache, CacheBuilder};
use cachemacro_tests::{RedisCluster, RedisServer};

mod basics;
mod codecs;
mod detached;
mod guarantees;
mod invalidation;
mod stampede;

/// The Redis behind a case: a server or a cluster.
#[derive(Clone)]
pub enum Target {
    Server(String),
    Cluster(Vec<String>),
}

tokio::task_local! {
    /// The Redis behind the case being run; unset on the embedded store.
    static REDIS: Target;
}

/// Whether the running case runs on Redis (rather than the embedded store).
pub fn on_redis() -> bool {
    REDIS.try_with(|_| ()).is_ok()
}

/// A plain connection to the Redis behind the running case, for checks the cache's API cannot
/// make (which keys exist, their types and ttls); `None` on the embedded store. On a cluster,
/// `KEYS` is asked of every master and their answers joined.
pub async fn raw_redis() -> Option<RawRedis> {
    Some(match REDIS.try_with(Clone::clone).ok()? {
        Target::Server(url) => {
            RawRedis::Server(cachemacro_tests::redis_server::connect(&url).await)
        }
        Target::Cluster(urls) => RawRedis::Cluster(cluster_connection(&urls).await),
    })
}

/// A plain connection to a server or a cluster.
pub enum RawRedis {
    Server(::redis::aio::MultiplexedConnection),
    Cluster(::redis::cluster_async::ClusterConnection),
}

impl ::redis::aio::ConnectionLike for RawRedis {
    fn req_packed_command<'a>(
        &'a mut self,
        command: &'a ::redis::Cmd,
    ) -> ::redis::RedisFuture<'a, ::redis::Value> {
        match self {
            RawRedis::Server(connection) => connection.req_packed_command(command),
            RawRedis::Cluster(connection) => connection.req_packed_command(command),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a ::redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> ::redis::RedisFuture<'a, Vec<::redis::Value>> {
        match self {
            RawRedis::Server(connection) => connection.req_packed_commands(pipeline, offset, count),
            RawRedis::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}

async fn cluster_connection(urls: &[String]) -> ::redis::cluster_async::ClusterConnection {
    ::redis::cluster::ClusterClient::builder(urls.to_vec())
        .response_timeout(Duration::from_secs(10))
        .build()
        .expect("the test cluster's URLs")
        .get_async_connection()
        .await
        .expect("the test cluster answers")
}

/// The cluster the cases of this binary share, made on first use.
static CLUSTER: Mutex<Option<RedisCluster>> = Mutex::new(None);

/// Whose turn it is on the shared cluster.
static CLUSTER_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// Stops the shared cluster when the test binary exits: a static is never dropped.
extern "C" fn stop_cluster() {
    let cluster = CLUSTER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    drop(cluster);
}

/// The node URLs of the shared cluster, made now if it is not yet.
fn shared_cluster() -> Vec<String> {
    let mut cluster = CLUSTER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if cluster.is_none() {
        let started = std::time::Instant::now();
        *cluster = Some(RedisCluster::start());
        eprintln!("test cluster ready in {:?}", started.elapsed());
        // SAFETY: `stop_cluster` is a plain function that lives as long as the process.
        let registered = unsafe { atexit(stop_cluster) };
        assert_eq!(registered, 0, "atexit");
    }
    cluster.as_ref().expect("started").urls()
}

/// A second cache over the same store as the fixture: another process, as far as the store can
/// tell, with its own prefix, statistics and single-flight table.
pub trait SharedStore: Backend {
    fn cache_with(&self, builder: CacheBuilder) -> Cache;

    fn cache_with_prefix(&self, prefix: &str) -> Cache {
        self.cache_with(Cache::builder().key_prefix(prefix))
    }

    fn cache_with_max_value_size(&self, bytes: usize) -> Cache {
        self.cache_with(Cache::builder().max_value_size(bytes))
    }
}

impl SharedStore for MemoryBackend {
    fn cache_with(&self, builder: CacheBuilder) -> Cache {
        builder.memory_backend(self.clone())
    }
}

impl SharedStore for RedisBackend {
    fn cache_with(&self, builder: CacheBuilder) -> Cache {
        builder.redis_backend(self.clone())
    }
}

/// Runs each `module::case(&cache, &backend)` once on the embedded store, once on a private
/// `redis-server` and once on the shared cluster.
macro_rules! conformance {
    ($($module:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        mod memory {
            use super::*;
            $(mod $module {
                use super::*;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        let backend = MemoryBackend::new(16 * 1024 * 1024);
                        let cache = Cache::builder().memory_backend(backend.clone());
                        crate::$module::$case(&cache, &backend).await;
                    }
                )*
            })*
        }

        mod redis {
            use super::*;
            $(mod $module {
                use super::*;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        let server = RedisServer::start();
                        // Generous: this suite checks behaviour, not latency, on a busy machine.
                        let timeout = Duration::from_secs(2);
                        let backend = RedisBackend::new(&server.url(), timeout, timeout).unwrap();
                        assert!(backend.warm_up(timeout).await, "the test server answers");
                        let cache = Cache::builder().redis_backend(backend.clone());
                        REDIS
                            .scope(Target::Server(server.url()), crate::$module::$case(&cache, &backend))
                            .await;
                    }
                )*
            })*
        }

        mod cluster {
            use super::*;
            $(mod $module {
                use super::*;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        let urls = tokio::task::spawn_blocking(shared_cluster).await.unwrap();
                        let _turn = CLUSTER_TURN.lock().await;
                        let mut raw = cluster_connection(&urls).await;
                        let () = ::redis::cmd("FLUSHALL").query_async(&mut raw).await.unwrap();
                        let timeout = Duration::from_secs(2);
                        let backend = RedisBackend::cluster(&urls, timeout, timeout, None).unwrap();
                        assert!(backend.warm_up(timeout).await, "the test cluster answers");
                        let cache = Cache::builder().redis_backend(backend.clone());
                        REDIS
                            .scope(Target::Cluster(urls), crate::$module::$case(&cache, &backend))
                            .await;
                    }
                )*
            })*
        }
    };
}

conformance! {
    basics: [
        backend_get_of_a_missing_key_is_none,
        backend_set_then_get_round_trips,
        backend_delete_reports_presence,
        backend_drops_entries_after_their_ttl,
        first_call_loads_and_second_hits,
        different_arguments_get_different_entries,
        separators_inside_arguments_never_collide,
        errors_are_returned_and_not_cached,
        none_is_cached_unless_turned_off,
        undecodable_entries_are_misses_that_get_overwritten,
        logically_expired_entries_are_misses,
        keys_carry_the_cache_prefix,
        get_set_delete_by_hand,
        get_with_loads_once,
        values_over_max_value_size_are_returned_but_not_stored,
    ],
    codecs: [
        every_codec_and_compression_round_trips,
        an_entry_of_another_codec_or_compression_is_a_miss_then_one_load,
        an_uncompressed_entry_is_read_by_a_compressing_function,
        a_write_through_writes_with_its_codec,
        the_cache_default_codec_serves_get_set_and_functions_that_name_none,
    ],
    detached: [
        a_method_on_a_clonable_service_refreshes_in_the_background,
        a_function_borrowing_str_and_the_cache_refreshes_in_the_background,
        a_service_that_cannot_be_cloned_refreshes_in_the_caller,
        a_body_that_is_not_send_refreshes_in_the_caller,
        detach_false_keeps_refreshes_in_the_caller,
        a_detached_refresh_that_panics_lets_the_next_stale_hit_refresh,
        a_caller_dropped_during_its_refresh_lets_the_next_stale_hit_refresh,
        an_owned_free_fn_refreshes_in_the_background,
        detach_false_keeps_an_owned_free_fns_refreshes_in_the_caller,
        a_method_without_companions_refreshes_in_the_caller,
        unlendable_signatures_refresh_in_the_caller,
    ],
    guarantees: [
        a_call_after_cache_invalidate_never_joins_an_older_load,
        a_call_after_a_failed_write_through_never_joins_an_older_load,
        a_call_after_delete_never_joins_an_older_load,
        set_voids_an_older_fill,
        refresh_after_a_write_never_returns_an_older_load,
        refresh_after_an_invalidation_never_returns_an_older_load,
        tag_invalidations_racing_reads_never_leave_an_older_version,
        invalidate_tag_reaches_a_sliding_entry_read_past_its_ttl,
        a_sliding_none_lives_its_negative_ttl,
        get_returns_a_live_sliding_entry_past_its_logical_expiry,
        sliding_reads_racing_writes_never_revive_an_entry,
        failed_tagged_loads_leave_nothing_readable_or_growing,
    ],
    invalidation: [
        write_through_stores_what_the_database_accepted,
        write_through_failure_removes_the_key_and_returns_the_error,
        invalidation_by_keys_and_tags_after_success_only,
        invalidate_tag_drops_every_entry_that_carried_it,
        a_load_in_flight_cannot_resurrect_a_tag_invalidated_value,
        a_load_in_flight_cannot_resurrect_a_key_invalidated_value,
        a_load_in_flight_cannot_overwrite_a_write_through,
        sliding_ttl_lives_while_read_and_expires_when_not,
        versions_do_not_read_each_others_entries,
        companions_invalidate_and_refresh_one_call,
        a_load_in_flight_cannot_resurrect_a_cleared_value,
        clear_removes_every_entry_of_one_function,
    ],
    stampede: [
        backend_fill_lock_is_exclusive_and_token_checked,
        backend_fill_lock_of_a_dead_holder_expires,
        a_thousand_callers_on_a_cold_key_load_once,
        waiters_of_a_failed_load_get_its_error,
        waiters_never_wait_past_lock_timeout,
        a_second_process_waits_for_the_first_ones_fill,
        a_hot_key_is_refreshed_early_in_the_background,
        stale_values_are_served_while_the_loader_fails,
        a_stale_hit_refreshes_in_the_background,
        without_the_lock_each_process_loads,
    ],
}

//! Redis's own view of itself, from `INFO`: what a user checks when the hit rate drops (is Redis
//! evicting? is it full?).

use std::collections::HashMap;

/// What the Redis server reports about itself (`INFO`): hits and misses of every client,
/// memory, evictions and clients. Fields the server does not report are 0 (or empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// `redis_version`.
    pub version: String,
    /// Reads of every client that found their key (`keyspace_hits`).
    pub keyspace_hits: u64,
    /// Reads of every client that did not (`keyspace_misses`).
    pub keyspace_misses: u64,
    /// Bytes allocated (`used_memory`).
    pub used_memory: u64,
    /// The memory limit, 0 for none (`maxmemory`).
    pub maxmemory: u64,
    /// What Redis does at the limit (`maxmemory_policy`, such as `allkeys-lru` or
    /// `noeviction`).
    pub maxmemory_policy: String,
    /// Keys removed to make room (`evicted_keys`): each one a future miss.
    pub evicted_keys: u64,
    /// Keys removed because their ttl ended (`expired_keys`).
    pub expired_keys: u64,
    /// Open client connections (`connected_clients`).
    pub connected_clients: u64,
    /// Keys in each database, by name (`db0` → keys), from the keyspace section.
    pub keys: HashMap<String, u64>,
}

impl ServerStats {
    /// The fields of an `INFO` reply: `name:value` lines, sections and comments skipped.
    pub(crate) fn parse(info: &str) -> Self {
        let mut stats = ServerStats::default();
        for line in info.lines() {
            let Some((name, value)) = line.trim_end().split_once(':') else {
                continue;
            };
            let number = || value.parse().unwrap_or(0);
            match name {
                "redis_version" => stats.version = value.to_owned(),
                "keyspace_hits" => stats.keyspace_hits = number(),
                "keyspace_misses" => stats.keyspace_misses = number(),
                "used_memory" => stats.used_memory = number(),
                "maxmemory" => stats.maxmemory = number(),
                "maxmemory_policy" => stats.maxmemory_policy = value.to_owned(),
                "evicted_keys" => stats.evicted_keys = number(),
                "expired_keys" => stats.expired_keys = number(),
                "connected_clients" => stats.connected_clients = number(),
                _ if name.starts_with("db") && name[2..].bytes().all(|b| b.is_ascii_digit()) => {
                    // `db0:keys=12,expires=3,avg_ttl=0`
                    let keys = value
                        .split(',')
                        .find_map(|field| field.strip_prefix("keys="))
                        .and_then(|keys| keys.parse().ok())
                        .unwrap_or(0);
                    stats.keys.insert(name.to_owned(), keys);
                }
                _ => {}
            }
        }
        stats
    }

    /// Keyspace hits over all reads, 0.0 before any.
    pub fn hit_rate(&self) -> f64 {
        let reads = self.keyspace_hits + self.keyspace_misses;
        if reads == 0 {
            0.0
        } else {
            self.keyspace_hits as f64 / reads as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ServerStats;

    #[test]
    fn info_fields_are_read_and_the_rest_skipped() {
        let info = "# Server\r\nredis_version:7.0.15\r\n\r\n# Clients\r\nconnected_clients:3\r\n\
                    # Memory\r\nused_memory:1048576\r\nmaxmemory:2097152\r\n\
                    maxmemory_policy:allkeys-lru\r\n# Stats\r\nexpired_keys:4\r\n\
                    evicted_keys:9\r\nkeyspace_hits:30\r\nkeyspace_misses:10\r\n\
                    # Keyspace\r\ndb0:keys=12,expires=3,avg_ttl=0\r\ndb3:keys=1,expires=0\r\n";
        let stats = ServerStats::parse(info);
        assert_eq!(stats.version, "7.0.15");
        assert_eq!((stats.keyspace_hits, stats.keyspace_misses), (30, 10));
        assert_eq!((stats.used_memory, stats.maxmemory), (1 << 20, 2 << 20));
        assert_eq!(stats.maxmemory_policy, "allkeys-lru");
        assert_eq!((stats.evicted_keys, stats.expired_keys), (9, 4));
        assert_eq!(stats.connected_clients, 3);
        assert_eq!(stats.keys.get("db0"), Some(&12));
        assert_eq!(stats.keys.get("db3"), Some(&1));
        assert!((stats.hit_rate() - 0.75).abs() < 1e-9);
    }

    #[test]
    fn garbage_leaves_defaults() {
        let stats = ServerStats::parse("keyspace_hits:lots\nnot a field\n:\ndbx:keys=1");
        assert_eq!(stats, ServerStats::default());
    }
}

//! Workspace-level examples, behaviour tests and benchmarks of cachemacro, and the harness they
//! share: a private `redis-server` per test, a private Redis Cluster, and a private Redis
//! Sentinel deployment.
#![warn(missing_docs)]

pub mod bench;
pub mod redis_cluster;
pub mod redis_sentinel;
pub mod redis_server;

pub use redis_cluster::RedisCluster;
pub use redis_sentinel::RedisSentinel;
pub use redis_server::RedisServer;

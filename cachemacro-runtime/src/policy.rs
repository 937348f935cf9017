//! Per-function caching options, built at compile time by the `#[cached]` expansion.

use std::time::Duration;

/// How one cached function stores its results.
///
/// Built by the generated code in a `static`, so every field is set by a `const fn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    ttl: Option<Duration>,
    negative_ttl: Option<Duration>,
}

impl Policy {
    /// A policy that uses the cache's default ttl and does not cache `None`.
    pub const fn new() -> Self {
        Self {
            ttl: None,
            negative_ttl: None,
        }
    }

    /// Entries live for `ttl` instead of the cache's default.
    pub const fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// How long a `None` result stays cached; `None` here means it is not cached at all.
    pub const fn negative_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.negative_ttl = ttl;
        self
    }

    pub(crate) fn ttl_or(&self, default: Duration) -> Duration {
        self.ttl.unwrap_or(default)
    }

    pub(crate) fn negative_ttl_value(&self) -> Option<Duration> {
        self.negative_ttl
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::new()
    }
}

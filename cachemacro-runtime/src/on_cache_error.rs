//! What a cached function does when a cache operation fails.

/// What a cached function does when a cache operation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnCacheError {
    /// Serve the function's own result and count the fault (the default).
    #[default]
    Ignore,
    /// Return the cache's error instead, converted into the function's error type. Applies to
    /// functions returning `Result<T, E>` with `E: From<cachemacro_runtime::Error>`; others keep
    /// ignoring faults.
    Fail,
}

//! The one error type of the runtime.

use std::fmt;

/// A specialized `Result` for cache operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a cache operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The Redis URL could not be parsed.
    InvalidUrl,
    /// The backend could not be reached, or dropped the connection.
    Connection,
    /// The backend did not answer within the operation timeout.
    Timeout,
    /// The backend answered with an error.
    Backend,
    /// A value could not be serialized.
    Encode,
    /// A stored entry could not be decoded (foreign bytes, older schema, truncated).
    Decode,
    /// The command was not sent: the circuit breaker is open after repeated failures.
    CircuitOpen,
    /// The server refused to store: it is out of memory (`maxmemory` with `noeviction`).
    OutOfMemory,
    /// The options cannot work together: a key prefix that would keep an entry's version and
    /// lock out of its Redis Cluster hash slot.
    InvalidConfig,
}

impl ErrorKind {
    /// The kind in snake case, as metrics label it: `"timeout"`, `"out_of_memory"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::Connection => "connection",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Backend => "backend",
            ErrorKind::Encode => "encode",
            ErrorKind::Decode => "decode",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::OutOfMemory => "out_of_memory",
        }
    }
}

/// An error from a cache operation.
///
/// Errors never carry a Redis URL, so they are safe to log even when the URL holds a password.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    detail: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the backend did not answer within the operation timeout.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// Whether the server refused a write because it is out of memory.
    pub fn is_out_of_memory(&self) -> bool {
        self.kind == ErrorKind::OutOfMemory
    }

    /// Whether the backend could not be reached.
    pub fn is_connection(&self) -> bool {
        self.kind == ErrorKind::Connection
    }

    /// Whether Redis is unreachable, slow, or skipped by the open circuit breaker: the faults a
    /// retry can cure once the server is back.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::CircuitOpen
        )
    }

    /// Whether a stored entry could not be decoded.
    pub fn is_decode(&self) -> bool {
        self.kind == ErrorKind::Decode
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::InvalidUrl => "invalid Redis URL",
            ErrorKind::Connection => "cache backend unreachable",
            ErrorKind::Timeout => "cache operation timed out",
            ErrorKind::Backend => "cache backend error",
            ErrorKind::Encode => "cannot encode value",
            ErrorKind::Decode => "cannot decode cached entry",
            ErrorKind::CircuitOpen => "cache circuit open: Redis is failing, command not sent",
            ErrorKind::OutOfMemory => "cache backend out of memory: value not stored",
            ErrorKind::InvalidConfig => "invalid cache configuration",
        };
        if self.detail.is_empty() {
            f.write_str(what)
        } else {
            write!(f, "{what}: {}", self.detail)
        }
    }
}

impl std::error::Error for Error {}

impl From<redis::ParsingError> for Error {
    fn from(_: redis::ParsingError) -> Self {
        // The reply's text could quote stored data; its shape is what went wrong.
        Error::new(ErrorKind::Backend, "unexpected reply from Redis")
    }
}

impl From<redis::RedisError> for Error {
    fn from(error: redis::RedisError) -> Self {
        let kind = if error.is_timeout() {
            ErrorKind::Timeout
        } else if error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
        {
            ErrorKind::Connection
        } else if error.code() == Some("OOM") {
            ErrorKind::OutOfMemory
        } else {
            ErrorKind::Backend
        };
        // The category and code are enough to act on; the full text of some redis errors
        // quotes connection parameters, which may hold credentials.
        let detail = match error.code() {
            Some(code) => format!("{:?} ({code})", error.kind()),
            None => format!("{:?}", error.kind()),
        };
        Error::new(kind, detail)
    }
}

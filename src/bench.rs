//! What the benchmarks share: the client runtime and the value they read.

use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

/// A multi-thread Tokio runtime with one worker: on two cores it leaves the other core to
/// `redis-server`, so client and server do not fight over both and results stay steady.
pub fn client_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// A value of about 200 bytes of JSON, the size of a typical cached row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Row id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: String,
    /// Free text.
    pub bio: String,
    /// Labels.
    pub tags: Vec<String>,
    /// A number.
    pub score: f64,
    /// A flag.
    pub active: bool,
}

impl Profile {
    /// The row with `id`, as the "database" returns it.
    pub fn load(id: u64) -> Self {
        Profile {
            id,
            name: "Ada Lovelace".into(),
            email: "ada.lovelace@example.com".into(),
            bio: "Mathematician; wrote the first published algorithm for a machine.".into(),
            tags: vec!["mathematics".into(), "engines".into(), "poetry".into()],
            score: 97.5,
            active: true,
        }
    }
}

//! Every log event of the current thread, captured as the fmt subscriber writes it, for tests
//! that check what the cache logs (no secrets, no storms). Each test binary uses part of it.
#![allow(dead_code)]

use std::io;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::format::FmtSpan;

/// The events logged on this thread since [`start`](Self::start), at every level.
pub struct CapturedLogs {
    text: Arc<Mutex<Vec<u8>>>,
    _guard: DefaultGuard,
}

impl CapturedLogs {
    pub fn start() -> Self {
        Self::capture(FmtSpan::NONE)
    }

    /// As [`start`](Self::start), with a line for each span as it closes: its name, its fields
    /// and how long it was busy.
    pub fn with_span_closes() -> Self {
        Self::capture(FmtSpan::CLOSE)
    }

    fn capture(spans: FmtSpan) -> Self {
        let text = Arc::new(Mutex::new(Vec::new()));
        let writer_text = Arc::clone(&text);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(spans)
            .with_writer(move || LogWriter(Arc::clone(&writer_text)))
            .finish();
        CapturedLogs {
            text,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// How many bytes were logged.
    pub fn len(&self) -> usize {
        self.text.lock().unwrap().len()
    }

    /// Everything logged, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    /// The `WARN` lines whose message is `message`.
    pub fn warnings(&self, message: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.contains(" WARN ") && line.contains(&format!(": {message}")))
            .map(str::to_owned)
            .collect()
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

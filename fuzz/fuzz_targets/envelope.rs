//! Arbitrary bytes read back as a stored entry, as when Redis holds foreign, truncated or corrupt
//! data under a cache key: reading may fail, never panic.
#![no_main]

use cachemacro_runtime::envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = envelope::decode(data) else {
        return;
    };
    assert!(
        data.starts_with(b"cm") && data.ends_with(entry.payload),
        "an accepted entry carries the magic and its payload is the entry's tail"
    );
    let _ = entry.is_expired_at(envelope::now_ms());
    let _ = entry.value::<serde_json::Value>();
});

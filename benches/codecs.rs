//! Codecs and compression: what each costs and saves.
//!
//! ```text
//! cargo bench --bench codecs
//! ```
//!
//! For a value of about 200 B, 20 KB and 1 MB of JSON (a record with strings, numbers, an
//! `Option`, an enum and a list of line items), each codec (JSON, MessagePack, postcard), alone
//! and with LZ4 or zstd above 1 KiB, is measured for:
//! 1. the size of the stored envelope, and the time to encode it and to decode the value from it
//!    (best of 5 batches, each ~50 ms);
//! 2. hits per second through a `#[cached]` function, 64 tasks on one Tokio worker, on the
//!    embedded backend and on a private `redis-server`, for the 200 B and 20 KB values (median of
//!    3 rounds of 1 s).
//!
//! It prints both as Markdown tables. Under `cargo test --benches` each step runs once, as a
//! smoke test, and prints no figures.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachemacro_runtime::envelope::{self, Meta};
use cachemacro_runtime::{cached, Cache, Codec, Compression, Encoding};
use cachemacro_tests::bench::{client_runtime, measuring, smoke_test_done, TIMEOUT};
use cachemacro_tests::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Status {
    Open,
    Shipped { carrier: String, tracking: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: String,
    title: String,
    quantity: u32,
    price_cents: i64,
    discount: Option<f32>,
}

/// An order: a typical row with a list of records, `lines` setting its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    email: Option<String>,
    status: Status,
    total_cents: i64,
    lines: Vec<Line>,
}

fn order(lines: usize) -> Order {
    Order {
        id: 4_211_977,
        customer: "Ada Lovelace".to_owned(),
        email: Some("ada@example.com".to_owned()),
        status: Status::Shipped {
            carrier: "DHL".to_owned(),
            tracking: 9_401_112_233,
        },
        total_cents: 129_900,
        lines: (0..lines)
            .map(|line| Line {
                sku: format!("SKU-{:06}", line * 7919 % 1_000_000),
                title: format!("Item {line}: {}", TITLES[line % TITLES.len()]),
                quantity: (line % 5) as u32 + 1,
                price_cents: 199 + (line as i64 * 37) % 10_000,
                discount: line.is_multiple_of(3).then_some(0.1),
            })
            .collect(),
    }
}

const TITLES: [&str; 4] = [
    "stainless steel water bottle, 750 ml",
    "recycled paper notebook A5, dotted",
    "USB-C cable 2 m braided",
    "wool socks, size 42-45",
];

/// The number of lines that makes an order about `bytes` long in JSON.
fn lines_for(bytes: usize) -> usize {
    let base = serde_json::to_vec(&order(0)).unwrap().len();
    let per_line = (serde_json::to_vec(&order(100)).unwrap().len() - base) / 100;
    bytes.saturating_sub(base) / per_line
}

const SIZES: [(&str, usize); 3] = [("200 B", 200), ("20 KB", 20_000), ("1 MB", 1_000_000)];

fn encodings() -> [(&'static str, Encoding); 9] {
    let lz4 = Compression::Lz4 { min_size: 1024 };
    let zstd = Compression::Zstd { min_size: 1024 };
    let with = |codec, compression| Encoding { codec, compression };
    [
        ("JSON", with(Codec::Json, Compression::None)),
        ("JSON + LZ4", with(Codec::Json, lz4)),
        ("JSON + zstd", with(Codec::Json, zstd)),
        ("MessagePack", with(Codec::MessagePack, Compression::None)),
        ("MessagePack + LZ4", with(Codec::MessagePack, lz4)),
        ("MessagePack + zstd", with(Codec::MessagePack, zstd)),
        ("postcard", with(Codec::Postcard, Compression::None)),
        ("postcard + LZ4", with(Codec::Postcard, lz4)),
        ("postcard + zstd", with(Codec::Postcard, zstd)),
    ]
}

/// The best time per call of `f` over 5 batches of ~50 ms; one call in test mode.
fn best_time(measuring: bool, mut f: impl FnMut()) -> Duration {
    if !measuring {
        f();
        return Duration::ZERO;
    }
    let started = Instant::now();
    f();
    let once = started.elapsed().max(Duration::from_nanos(100));
    let per_batch = (Duration::from_millis(50).as_nanos() / once.as_nanos()).max(1) as u32;
    (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            started.elapsed() / per_batch
        })
        .min()
        .expect("5 batches")
}

fn format_time(time: Duration) -> String {
    let micros = time.as_secs_f64() * 1e6;
    if micros < 10.0 {
        format!("{micros:.2} µs")
    } else if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else {
        format!("{:.2} ms", micros / 1000.0)
    }
}

fn format_size(bytes: usize) -> String {
    if bytes < 10_000 {
        format!("{bytes} B")
    } else if bytes < 1_000_000 {
        format!("{:.1} KB", bytes as f64 / 1e3)
    } else {
        format!("{:.2} MB", bytes as f64 / 1e6)
    }
}

/// Encoded size, encode and decode time of each encoding at each size: one row per encoding.
fn sizes_and_times(measuring: bool) -> Vec<String> {
    let meta = Meta {
        ttl: Duration::from_secs(60),
        ..Meta::default()
    };
    let values: Vec<Order> = SIZES
        .iter()
        .map(|(_, bytes)| order(lines_for(*bytes)))
        .collect();
    let mut rows = Vec::new();
    for (name, encoding) in encodings() {
        let mut row = format!("| {name} |");
        for value in &values {
            let bytes = envelope::encode_as(value, &meta, encoding).unwrap();
            let decoded: Order = envelope::decode(&bytes).unwrap().value().unwrap();
            assert_eq!(&decoded, value, "{name} round-trips");
            let encode = best_time(measuring, || {
                black_box(envelope::encode_as(black_box(value), &meta, encoding).unwrap());
            });
            let decode = best_time(measuring, || {
                let envelope = envelope::decode(black_box(&bytes)).unwrap();
                black_box(envelope.value::<Order>().unwrap());
            });
            row += &format!(
                " {} | {} | {} |",
                format_size(bytes.len()),
                format_time(encode),
                format_time(decode)
            );
        }
        rows.push(row);
    }
    rows
}

/// One cached function per encoding; `lines` sets the value's size.
macro_rules! order_fns {
    ($($name:ident: ($($args:tt)*);)*) => {$(
        #[cached(ttl = "1h", key = "order:<lines>", cache = cache, $($args)*)]
        async fn $name(cache: &Cache, lines: usize) -> Order {
            order(lines)
        }
    )*};
}

order_fns! {
    json: (codec = "json");
    json_lz4: (codec = "json", compress = "lz4", compress_above = "1KiB");
    json_zstd: (codec = "json", compress = "zstd", compress_above = "1KiB");
    msgpack: (codec = "msgpack");
    msgpack_lz4: (codec = "msgpack", compress = "lz4", compress_above = "1KiB");
    msgpack_zstd: (codec = "msgpack", compress = "zstd", compress_above = "1KiB");
    postcard: (codec = "postcard");
    postcard_lz4: (codec = "postcard", compress = "lz4", compress_above = "1KiB");
    postcard_zstd: (codec = "postcard", compress = "zstd", compress_above = "1KiB");
}

/// Hits through the function of encoding number `which`.
async fn read(which: usize, cache: &Cache, lines: usize) -> Order {
    match which {
        0 => json(cache, lines).await,
        1 => json_lz4(cache, lines).await,
        2 => json_zstd(cache, lines).await,
        3 => msgpack(cache, lines).await,
        4 => msgpack_lz4(cache, lines).await,
        5 => msgpack_zstd(cache, lines).await,
        6 => postcard(cache, lines).await,
        7 => postcard_lz4(cache, lines).await,
        _ => postcard_zstd(cache, lines).await,
    }
}

/// Hits per second of 64 tasks reading one entry through the function of encoding `which`, for
/// `period`; at least one call per task.
async fn hits_per_second(which: usize, cache: &Cache, lines: usize, period: Duration) -> f64 {
    let calls = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    // Each task watches the clock itself: an embedded hit never yields, so a task on the one
    // worker runs until its deadline and no timer could interrupt it.
    let deadline = started + period;
    let readers: Vec<_> = (0..64)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                loop {
                    let value = read(which, &cache, lines).await;
                    assert_eq!(value.lines.len(), lines);
                    calls.fetch_add(1, Relaxed);
                    if Instant::now() >= deadline {
                        break;
                    }
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.unwrap();
    }
    calls.load(Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn format_rate(rate: f64) -> String {
    let thousands = (rate / 1000.0).floor() as u64;
    let rest = rate as u64 % 1000;
    if thousands == 0 {
        format!("{rest}")
    } else {
        format!("{thousands},{rest:03}")
    }
}

fn main() {
    let measuring = measuring();
    let sizes = sizes_and_times(measuring);

    let runtime = client_runtime();
    let server = RedisServer::start();
    let (period, rounds) = if measuring {
        (Duration::from_secs(1), 3)
    } else {
        (Duration::ZERO, 1)
    };
    let hit_sizes = [lines_for(SIZES[0].1), lines_for(SIZES[1].1)];
    let hits: Vec<String> = runtime.block_on(async {
        let mut rows = Vec::new();
        for (which, (name, _)) in encodings().iter().enumerate() {
            let mut row = format!("| {name} |");
            for redis in [false, true] {
                // A cache per encoding, so that no function reads another's entries.
                let builder = Cache::builder()
                    .key_prefix(format!("{which}:"))
                    .operation_timeout(TIMEOUT);
                let cache = if redis {
                    builder.redis(&server.url()).await.expect("a Redis cache")
                } else {
                    builder.memory()
                };
                for lines in hit_sizes {
                    read(which, &cache, lines).await;
                    let mut rates: Vec<f64> = Vec::new();
                    for _ in 0..rounds {
                        rates.push(hits_per_second(which, &cache, lines, period).await);
                    }
                    rates.sort_by(f64::total_cmp);
                    row += &format!(" {} |", format_rate(rates[rates.len() / 2]));
                }
                let stats = cache.stats();
                assert_eq!(stats.loads, 2, "{name}: every measured call was a hit");
                assert_eq!(stats.decode_errors, 0, "{name}");
            }
            rows.push(row);
        }
        rows
    });
    if !measuring {
        smoke_test_done("codecs");
        return;
    }
    println!("Stored size, encode time and decode time of the envelope:\n");
    print!("| codec |");
    for (size, _) in SIZES {
        print!(" {size}: size | encode | decode |");
    }
    println!("\n|---|{}", "---:|".repeat(3 * SIZES.len()));
    for row in sizes {
        println!("{row}");
    }
    println!("\nHits per second, 64 tasks on one Tokio worker:\n");
    println!(
        "| codec | embedded, 200 B | embedded, 20 KB | Redis, 200 B | Redis, 20 KB |\n\
         |---|---:|---:|---:|---:|"
    );
    for row in hits {
        println!("{row}");
    }
}

//! Codecs and compression: every one round-trips through `#[cached]`, entries record how they
//! were written, and an entry written another way is a miss followed by one load.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::backend::Backend;
use cachemacro_runtime::{cache_put, cached, envelope, Cache, Codec, Compression};
use serde::{Deserialize, Serialize};

use crate::SharedStore;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Plan {
    Free,
    Paid { seats: u32, annual: bool },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    line: u32,
    sku: String,
    price_cents: i64,
}

/// Strings, numbers, `Option`s, an enum and a list of records; `orders` sets its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Account {
    id: u64,
    name: String,
    email: Option<String>,
    referrer: Option<u64>,
    plan: Plan,
    orders: Vec<Order>,
}

fn account(id: u64, orders: u32) -> Account {
    Account {
        id,
        name: format!("Account {id}"),
        email: id.is_multiple_of(2).then(|| format!("a{id}@example.com")),
        referrer: None,
        plan: Plan::Paid {
            seats: 3,
            annual: true,
        },
        orders: (0..orders)
            .map(|line| Order {
                line,
                sku: format!("SKU-{line:05}"),
                price_cents: -250 + i64::from(line),
            })
            .collect(),
    }
}

/// The codec byte `codec` and compression `compression` make (see the envelope's docs).
fn codec_byte(codec: u8, compression: u8) -> u8 {
    codec | compression << 4
}

const JSON: u8 = 0;
const MSGPACK: u8 = 1;
const POSTCARD: u8 = 2;
const NONE: u8 = 0;
const LZ4: u8 = 1;
const ZSTD: u8 = 2;

/// One cached function per codec and compression, each counting its loads; all read
/// `account:<id>` with `orders` records.
macro_rules! account_fns {
    ($($name:ident: ($($args:tt)*);)*) => {$(
        #[cached(ttl = 60, key = "account:<id>:<orders>", cache = cache, $($args)*)]
        async fn $name(cache: &Cache, loads: &AtomicUsize, id: u64, orders: u32) -> Account {
            loads.fetch_add(1, SeqCst);
            account(id, orders)
        }
    )*};
}

account_fns! {
    plain: ();
    json_lz4: (codec = "json", compress = "lz4", compress_above = "1KiB");
    json_zstd: (compress = "zstd", compress_above = 1024);
    msgpack: (codec = "msgpack");
    msgpack_lz4: (codec = "msgpack", compress = "lz4", compress_above = "1KiB");
    msgpack_zstd: (codec = "msgpack", compress = "zstd", compress_above = "1KiB");
    postcard: (codec = "postcard");
    postcard_lz4: (codec = "postcard", compress = "lz4", compress_above = "1KiB");
    postcard_zstd: (codec = "postcard", compress = "zstd", compress_above = "1KiB");
}

/// For each function, on a cache of its own (prefix `<name>:`): calls it twice for a small (2
/// orders) and a large (200 orders, about 8 KB of JSON) value and checks that the first call
/// loads, the second hits with the same value, and the stored entry records the codec and, for
/// the large value only, the compression.
macro_rules! check_round_trips {
    ($backend:expr; $(($f:ident, $codec:expr, $compression:expr)),* $(,)?) => {$({
        let prefix = concat!(stringify!($f), ":");
        let cache = $backend.cache_with_prefix(prefix);
        let loads = AtomicUsize::new(0);
        for (id, orders) in [(1u64, 2u32), (2, 200)] {
            let first = $f(&cache, &loads, id, orders).await;
            let second = $f(&cache, &loads, id, orders).await;
            assert_eq!(first, account(id, orders), "{}", stringify!($f));
            assert_eq!(second, first, "{}", stringify!($f));
            let stored = $backend
                .get(&format!("{prefix}account:{id}:{orders}"))
                .await
                .unwrap()
                .expect("stored");
            let stored = envelope::decode(stored.as_ref()).unwrap();
            let compression = if orders > 2 { $compression } else { NONE };
            assert_eq!(
                stored.codec,
                codec_byte($codec, compression),
                "{} with {orders} orders",
                stringify!($f)
            );
            assert_eq!(stored.value::<Account>().unwrap(), first);
        }
        assert_eq!(loads.load(SeqCst), 2, "{}: one load per value", stringify!($f));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.decode_errors), (2, 0), "{}", stringify!($f));
    })*};
}

pub async fn every_codec_and_compression_round_trips<B: Backend + SharedStore>(
    _: &Cache,
    backend: &B,
) {
    check_round_trips! { backend;
        (plain, JSON, NONE),
        (json_lz4, JSON, LZ4),
        (json_zstd, JSON, ZSTD),
        (msgpack, MSGPACK, NONE),
        (msgpack_lz4, MSGPACK, LZ4),
        (msgpack_zstd, MSGPACK, ZSTD),
        (postcard, POSTCARD, NONE),
        (postcard_lz4, POSTCARD, LZ4),
        (postcard_zstd, POSTCARD, ZSTD),
    }
}

/// Writes `account:<id>:<orders>` with `$writer`, then reads it with `$reader` twice: a miss
/// counted as a decode error, one load that overwrites the entry, then a hit. Then `$writer`
/// reads what `$reader` wrote: `back` says whether that is a miss too (it is not when `$reader`
/// wrote it uncompressed, which every encoding of its codec reads).
macro_rules! check_other_codec_is_a_miss {
    ($cache:expr, $writer:ident, $reader:ident, $id:expr, $orders:expr, back: $back:expr) => {{
        let (written, read) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let before = $cache.stats();
        $writer($cache, &written, $id, $orders).await;
        let value = $reader($cache, &read, $id, $orders).await;
        assert_eq!(value, account($id, $orders));
        assert_eq!(
            $reader($cache, &read, $id, $orders).await,
            value,
            "then a hit"
        );
        let what = concat!(stringify!($writer), " read by ", stringify!($reader));
        assert_eq!(written.load(SeqCst), 1, "{what}");
        assert_eq!(read.load(SeqCst), 1, "{what}: a miss, then one load");
        let after = $cache.stats();
        assert_eq!(after.decode_errors - before.decode_errors, 1, "{what}");
        assert_eq!(after.hits - before.hits, 1, "{what}");
        assert_eq!($writer($cache, &written, $id, $orders).await, value);
        let back_is_a_miss: bool = $back;
        assert_eq!(
            written.load(SeqCst),
            1 + usize::from(back_is_a_miss),
            "{what}: and back"
        );
    }};
}

pub async fn an_entry_of_another_codec_or_compression_is_a_miss_then_one_load<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    check_other_codec_is_a_miss!(cache, plain, msgpack, 1, 2, back: true);
    check_other_codec_is_a_miss!(cache, msgpack, postcard, 2, 2, back: true);
    check_other_codec_is_a_miss!(cache, postcard, plain, 3, 2, back: true);
    check_other_codec_is_a_miss!(cache, msgpack_lz4, msgpack_zstd, 4, 200, back: true);
    check_other_codec_is_a_miss!(cache, json_zstd, plain, 5, 200, back: false);
}

pub async fn an_uncompressed_entry_is_read_by_a_compressing_function<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    let (uncompressed, compressing) = (AtomicUsize::new(0), AtomicUsize::new(0));
    self::plain(cache, &uncompressed, 1, 200).await;
    assert_eq!(json_lz4(cache, &compressing, 1, 200).await, account(1, 200));
    assert_eq!(
        compressing.load(SeqCst),
        0,
        "an entry below the threshold or from before compression was turned on is read as is"
    );
}

#[cache_put(ttl = 60, key = "account:<id>:<orders>", cache = cache, codec = "msgpack")]
async fn save_msgpack(cache: &Cache, id: u64, orders: u32) -> Account {
    account(id, orders)
}

pub async fn a_write_through_writes_with_its_codec<B: Backend>(cache: &Cache, _: &B) {
    let loads = AtomicUsize::new(0);
    save_msgpack(cache, 8, 2).await;
    assert_eq!(msgpack(cache, &loads, 8, 2).await, account(8, 2));
    assert_eq!(
        loads.load(SeqCst),
        0,
        "the function reads what the put wrote"
    );
    assert_eq!(cache.stats().hits, 1);
}

pub async fn the_cache_default_codec_serves_get_set_and_functions_that_name_none<
    B: Backend + SharedStore,
>(
    _: &Cache,
    backend: &B,
) {
    let packed = backend.cache_with(
        Cache::builder()
            .codec(Codec::MessagePack)
            .compression(Compression::Lz4 { min_size: 1024 }),
    );
    let plain = backend.cache_with(Cache::builder());
    let value = account(1, 200);
    packed
        .set("by-hand", &value, Duration::from_secs(60))
        .await
        .unwrap();
    let stored = backend.get("by-hand").await.unwrap().expect("stored");
    assert_eq!(
        envelope::decode(stored.as_ref()).unwrap().codec,
        codec_byte(MSGPACK, LZ4)
    );
    assert_eq!(
        packed.get::<Account>("by-hand").await.unwrap(),
        Some(value.clone())
    );
    assert_eq!(
        plain.get::<Account>("by-hand").await.unwrap(),
        None,
        "another codec is absent, not an error"
    );

    // `plain` names no codec: on this cache it writes MessagePack, compressed.
    let loads = AtomicUsize::new(0);
    assert_eq!(self::plain(&packed, &loads, 2, 200).await, account(2, 200));
    assert_eq!(self::plain(&packed, &loads, 2, 200).await, account(2, 200));
    assert_eq!(loads.load(SeqCst), 1);
    let stored = backend.get("account:2:200").await.unwrap().expect("stored");
    assert_eq!(
        envelope::decode(stored.as_ref()).unwrap().codec,
        codec_byte(MSGPACK, LZ4)
    );
    // `msgpack_zstd` names its own compression, which wins over the cache's.
    let loads = AtomicUsize::new(0);
    msgpack_zstd(&packed, &loads, 3, 200).await;
    let stored = backend.get("account:3:200").await.unwrap().expect("stored");
    assert_eq!(
        envelope::decode(stored.as_ref()).unwrap().codec,
        codec_byte(MSGPACK, ZSTD)
    );
}

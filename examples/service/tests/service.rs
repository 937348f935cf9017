//! The catalog service in-process on a free port, driven over HTTP: each response carries the
//! current data after writes and reprices, and `/metrics`, scraped like Prometheus does, counts
//! exactly the hits and misses the requests made.

use std::net::SocketAddr;
use std::sync::OnceLock;

use cachemacro_runtime::{metric_names, Cache};
use cachemacro_service::{install_recorder, router, Catalog, Database, Product};
use cachemacro_tests::RedisServer;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::{TcpListener, TcpStream};

/// The process's recorder, installed before the first cached call of any test.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| install_recorder().expect("the only recorder"))
}

/// Starts the service for `catalog` on a free loopback port and returns its address. It runs
/// until the test's runtime shuts down.
async fn start(catalog: Catalog) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let address = listener.local_addr().expect("a bound address");
    let app = router(catalog, recorder().clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// A catalog on a fresh seeded database, reading through `cache`.
fn catalog(cache: Cache) -> Catalog {
    Catalog::new(Database::in_memory().expect("a SQLite database"), cache)
}

/// Sends one HTTP/1.1 request on a new connection; returns the status, the content type and the
/// body.
async fn request(
    address: SocketAddr,
    method: Method,
    path: &str,
    json: Option<&str>,
) -> (StatusCode, String, String) {
    let stream = TcpStream::connect(address)
        .await
        .expect("the service listens");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("an HTTP/1.1 connection");
    tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, address.to_string());
    if json.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    let body = Full::new(Bytes::from(json.unwrap_or_default().to_owned()));
    let response = sender
        .send_request(builder.body(body).expect("a valid request"))
        .await
        .expect("a response");
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the whole body")
        .to_bytes();
    let body = String::from_utf8(body.to_vec()).expect("a UTF-8 body");
    (status, content_type, body)
}

/// `GET /products/{id}`, which must succeed.
async fn get_product(address: SocketAddr, id: u64) -> Product {
    let (status, _, body) = request(address, Method::GET, &format!("/products/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "GET /products/{id}: {body}");
    serde_json::from_str(&body).expect("a product")
}

/// The status of a request whose answer is an error, after checking its JSON body.
async fn error_status(address: SocketAddr, method: Method, path: &str, json: &str) -> StatusCode {
    let json = (!json.is_empty()).then_some(json);
    let (status, _, body) = request(address, method, path, json).await;
    let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
    assert!(error["error"].is_string(), "{path}: {body}");
    status
}

/// The value of the sample of `metric` labelled with `function` and `cache`, in a scrape.
fn sample(scrape: &str, metric: &str, function: &str, cache: &str) -> Option<f64> {
    let labels = [format!("fn=\"{function}\""), format!("cache=\"{cache}\"")];
    scrape.lines().find_map(|line| {
        let (labels_text, value) = line
            .strip_prefix(metric)?
            .strip_prefix('{')?
            .split_once("} ")?;
        labels
            .iter()
            .all(|label| labels_text.contains(label.as_str()))
            .then(|| value.trim().parse().ok())?
    })
}

#[tokio::test]
async fn reads_are_counted_and_never_stale_after_writes_and_reprices() {
    recorder();
    let redis = RedisServer::start();
    let cache = Cache::builder()
        .name("service-test")
        .key_prefix("catalog:")
        .redis(&redis.url())
        .await
        .expect("a Redis cache");
    let service = start(catalog(cache.clone())).await;

    // Product (P, `catalog.product`) and vendor (V, `catalog.product_vendor`) entries: each read
    // of a product reads V, then P.
    for _ in 0..5 {
        let anvil = get_product(service, 1).await; // P and V: 1 miss, then 4 hits
        assert_eq!((anvil.name.as_str(), anvil.price_cents), ("Anvil", 1000));
    }
    let board = get_product(service, 3).await; // P and V: 1 miss
    assert_eq!((board.vendor_id, board.price_cents), (2, 400));

    // Write-through: the database first, then the cache holds the new product.
    let (status, _, body) = request(
        service,
        Method::PUT,
        "/products/1",
        Some(r#"{"name": "Anvil, heavy", "price_cents": 1200}"#),
    )
    .await; // V: 1 hit (the product's vendor)
    assert_eq!(status, StatusCode::OK, "{body}");
    let written: Product = serde_json::from_str(&body).expect("a product");
    assert_eq!(
        (written.name.as_str(), written.price_cents),
        ("Anvil, heavy", 1200)
    );
    for _ in 0..3 {
        let anvil = get_product(service, 1).await; // P and V: 3 hits, with the new data
        assert_eq!(anvil, written, "a read after the write returned older data");
    }

    // The bulk update: +10% on vendor 1 in one statement, then its tag is invalidated.
    let (status, _, body) = request(
        service,
        Method::POST,
        "/vendors/1/reprice",
        Some(r#"{"percent": 10}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, r#"{"vendor_id":1,"updated":2}"#);
    for _ in 0..2 {
        let anvil = get_product(service, 1).await; // P: 1 miss, 1 hit; V: 2 hits (untagged)
        assert_eq!(
            anvil.price_cents, 1320,
            "a read after the reprice returned older data"
        );
    }
    for _ in 0..2 {
        let skates = get_product(service, 2).await; // P and V: 1 miss, 1 hit
        assert_eq!((skates.vendor_id, skates.price_cents), (1, 2750));
    }
    let board = get_product(service, 3).await; // P and V: 1 hit: vendor 2 was not repriced
    assert_eq!(board.price_cents, 400);

    // An unknown product is a 404, and an `Err` is never cached: each asks the database.
    for _ in 0..2 {
        let status = error_status(service, Method::GET, "/products/99", "").await; // V: 1 miss
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    // A second instance of the service on the same Redis reads what the first one stored.
    let other_cache = Cache::builder()
        .name("service-test-b")
        .key_prefix("catalog:")
        .redis(&redis.url())
        .await
        .expect("a Redis cache");
    let other = start(catalog(other_cache)).await;
    // Its database is a fresh seed, so these prices can only have come from the shared cache.
    assert_eq!(get_product(other, 1).await.price_cents, 1320); // P and V: 1 hit
    assert_eq!(get_product(other, 2).await.price_cents, 2750); // P and V: 1 hit

    let (status, content_type, scrape) = request(service, Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let count = |metric: &str, function: &str, cache: &str| {
        sample(&scrape, metric, function, cache)
            .unwrap_or_else(|| panic!("no {metric} of {function} on {cache}:\n{scrape}"))
    };
    let (hits, misses) = (metric_names::HITS, metric_names::MISSES);
    // P: misses 1 + 1 + 1 (product 1 after the reprice) + 1 (product 2);
    // hits 4 + 3 + 1 + 1 + 1 (product 3 after the reprice).
    assert_eq!(count(misses, "catalog.product", "service-test"), 4.0);
    assert_eq!(count(hits, "catalog.product", "service-test"), 10.0);
    // Each miss ran the query once, and its time is in the histogram.
    let loads = metric_names::LOADS;
    assert_eq!(count(loads, "catalog.product", "service-test"), 4.0);
    let load_count = format!("{}_count", metric_names::LOAD_SECONDS);
    assert_eq!(count(&load_count, "catalog.product", "service-test"), 4.0);
    let bucket = format!("{}_bucket", metric_names::LOAD_SECONDS);
    assert!(
        scrape.lines().any(|line| line.starts_with(&bucket)
            && line.contains("fn=\"catalog.product\"")
            && line.contains("le=\"0.001\"")),
        "the load time is a histogram with the service's buckets:\n{scrape}"
    );
    // V: misses 1 + 1 + 1 (product 2) + 2 (product 99);
    // hits 4 + 1 (the write) + 3 + 2 + 1 + 1.
    assert_eq!(count(misses, "catalog.product_vendor", "service-test"), 5.0);
    assert_eq!(count(hits, "catalog.product_vendor", "service-test"), 12.0);
    // The second instance only hit.
    assert_eq!(count(hits, "catalog.product", "service-test-b"), 2.0);
    assert_eq!(count(hits, "catalog.product_vendor", "service-test-b"), 2.0);
    assert_eq!(count(misses, "catalog.product", "service-test-b"), 0.0);
    let errors = sample(
        &scrape,
        metric_names::ERRORS,
        "catalog.product",
        "service-test",
    );
    assert_eq!(errors.unwrap_or(0.0), 0.0, "no cache operation failed");

    // The scrape and the cache's own statistics agree.
    let product = cache.function_stats()["catalog.product"];
    assert_eq!((product.hits, product.misses, product.loads), (10, 4, 4));
}

#[tokio::test]
async fn bad_requests_are_answered_with_http_errors() {
    recorder();
    let service = start(catalog(Cache::builder().name("errors-test").memory())).await;
    let status = |method, path: &'static str, json: &'static str| async move {
        error_status(service, method, path, json).await
    };
    assert_eq!(get_product(service, 1).await.price_cents, 1000);

    assert_eq!(
        status(Method::GET, "/products/99", "").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(
            Method::PUT,
            "/products/99",
            r#"{"name": "Anvil", "price_cents": 1}"#
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(Method::PUT, "/products/1", "not json").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(Method::PUT, "/products/1", r#"{"name": "Anvil"}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no price"
    );
    assert_eq!(
        status(
            Method::PUT,
            "/products/1",
            r#"{"name": " ", "price_cents": 1}"#
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status(
            Method::PUT,
            "/products/1",
            r#"{"name": "Anvil", "price_cents": -1}"#
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status(Method::POST, "/vendors/9/reprice", r#"{"percent": 10}"#).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(Method::POST, "/vendors/1/reprice", r#"{"percent": -100}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status(Method::GET, "/products/anvil", "").await,
        StatusCode::BAD_REQUEST,
        "an id is a number"
    );

    // None of the refused writes reached the database or the cache.
    let anvil = get_product(service, 1).await;
    assert_eq!((anvil.name.as_str(), anvil.price_cents), ("Anvil", 1000));
    let skates = get_product(service, 2).await;
    assert_eq!(skates.price_cents, 2500);
}

//! The catalog service on a port, for people and their curl.
//!
//! ```text
//! cargo run -p cachemacro-service
//! REDIS_URL=redis://127.0.0.1:6379/ PORT=3000 cargo run -p cachemacro-service
//! ```
//!
//! `REDIS_URL` selects Redis (else the embedded cache), `PORT` the loopback port (3000), and
//! `DATABASE_PATH` a SQLite file (else a database in memory, seeded at each start).

use std::error::Error;
use std::time::Duration;

use cachemacro_runtime::Cache;
use cachemacro_service::{install_recorder, router, Catalog, Database};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt().init();
    // Before the first cached call, so that every function's metrics reach it.
    let metrics = install_recorder()?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });

    let cache = Cache::builder()
        .name("catalog")
        .key_prefix("catalog:")
        .from_env()
        .await?;
    let database_path = std::env::var("DATABASE_PATH").unwrap_or_else(|_| ":memory:".to_owned());
    let catalog = Catalog::new(Database::open(&database_path)?, cache);
    // Redis keeps what an earlier run cached, which a freshly seeded database may contradict.
    catalog.forget_cached_products().await?;

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse()?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(
        "listening on http://{}, cache {:?}",
        listener.local_addr()?,
        catalog.cache()
    );
    axum::serve(listener, router(catalog, metrics))
        .with_graceful_shutdown(async {
            // Without a signal handler the server runs until it is killed.
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

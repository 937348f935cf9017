//! The catalog's SQLite database: one connection behind a mutex, queried on Tokio's blocking
//! threads so that a query never stalls the workers that serve requests.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{params, Connection, OptionalExtension};

use crate::catalog::Product;

/// The schema, created when missing.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS vendors (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS products (
        id INTEGER PRIMARY KEY,
        vendor_id INTEGER NOT NULL REFERENCES vendors (id),
        name TEXT NOT NULL,
        price_cents INTEGER NOT NULL CHECK (price_cents >= 0)
    );
    CREATE INDEX IF NOT EXISTS products_by_vendor ON products (vendor_id);
";

/// The rows of an empty database: two vendors, the first with two products.
const SEED: &str = "
    INSERT INTO vendors (id, name) VALUES (1, 'Acme'), (2, 'Globex');
    INSERT INTO products (id, vendor_id, name, price_cents) VALUES
        (1, 1, 'Anvil', 1000),
        (2, 1, 'Rocket skates', 2500),
        (3, 2, 'Hover board', 400);
";

/// A failed query, or a query that could not run. Its text is SQLite's message: it is logged,
/// never shown to HTTP clients.
#[derive(Debug, Clone)]
pub struct DbError(String);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database error: {}", self.0)
    }
}

impl std::error::Error for DbError {}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> Self {
        DbError(error.to_string())
    }
}

/// A handle to the database; clones share the connection.
#[derive(Clone)]
pub struct Database {
    connection: Arc<Mutex<Connection>>,
}

impl Database {
    /// Opens the database at `path` (`":memory:"` for a private one in memory), creates the
    /// schema when missing and seeds it when it has no vendor.
    pub fn open(path: &str) -> Result<Database, DbError> {
        let connection = Connection::open(path)?;
        connection.execute_batch(SCHEMA)?;
        let vendors: u64 =
            connection.query_row("SELECT COUNT(*) FROM vendors", [], |row| row.get(0))?;
        if vendors == 0 {
            connection.execute_batch(SEED)?;
        }
        Ok(Database {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// A private database in memory, seeded.
    pub fn in_memory() -> Result<Database, DbError> {
        Database::open(":memory:")
    }

    /// Runs `query` on a blocking thread with the connection.
    async fn run<T, Q>(&self, query: Q) -> Result<T, DbError>
    where
        T: Send + 'static,
        Q: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A query that panicked left the connection as SQLite left it: still usable.
            let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            query(&connection).map_err(DbError::from)
        })
        .await
        .map_err(|error| DbError(format!("the query did not finish: {error}")))?
    }

    /// The product `id`, if it exists.
    pub async fn product(&self, id: u64) -> Result<Option<Product>, DbError> {
        self.run(move |connection| {
            connection
                .query_row(
                    "SELECT id, vendor_id, name, price_cents FROM products WHERE id = ?1",
                    params![id],
                    product_from_row,
                )
                .optional()
        })
        .await
    }

    /// The vendor of product `id`, if the product exists.
    pub async fn product_vendor(&self, id: u64) -> Result<Option<u64>, DbError> {
        self.run(move |connection| {
            connection
                .query_row(
                    "SELECT vendor_id FROM products WHERE id = ?1",
                    params![id],
                    |row| row.get(0),
                )
                .optional()
        })
        .await
    }

    /// Writes `product`'s name and price, and returns the row as stored; `None` when no product
    /// has its id and vendor.
    pub async fn update_product(&self, product: Product) -> Result<Option<Product>, DbError> {
        self.run(move |connection| {
            connection
                .query_row(
                    "UPDATE products SET name = ?1, price_cents = ?2 \
                     WHERE id = ?3 AND vendor_id = ?4 \
                     RETURNING id, vendor_id, name, price_cents",
                    params![
                        product.name,
                        product.price_cents,
                        product.id,
                        product.vendor_id
                    ],
                    product_from_row,
                )
                .optional()
        })
        .await
    }

    /// Changes the price of every product of `vendor_id` by `percent` (rounded down to the cent)
    /// in one statement, and returns how many products it changed; `None` when there is no such
    /// vendor.
    pub async fn reprice_vendor(
        &self,
        vendor_id: u64,
        percent: i64,
    ) -> Result<Option<usize>, DbError> {
        self.run(move |connection| {
            let exists: bool = connection.query_row(
                "SELECT EXISTS (SELECT 1 FROM vendors WHERE id = ?1)",
                params![vendor_id],
                |row| row.get(0),
            )?;
            if !exists {
                return Ok(None);
            }
            connection
                .execute(
                    "UPDATE products SET price_cents = price_cents * (100 + ?1) / 100 \
                     WHERE vendor_id = ?2",
                    params![percent, vendor_id],
                )
                .map(Some)
        })
        .await
    }

    /// The ids of all vendors.
    pub async fn vendor_ids(&self) -> Result<Vec<u64>, DbError> {
        self.run(|connection| {
            let mut statement = connection.prepare("SELECT id FROM vendors ORDER BY id")?;
            let ids = statement.query_map([], |row| row.get(0))?;
            ids.collect()
        })
        .await
    }
}

fn product_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        id: row.get(0)?,
        vendor_id: row.get(1)?,
        name: row.get(2)?,
        price_cents: row.get(3)?,
    })
}

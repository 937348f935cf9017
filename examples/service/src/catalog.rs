//! The catalog's reads and writes, each cached by one attribute.
//!
//! | operation | pattern | cache entries |
//! | --- | --- | --- |
//! | [`Catalog::product`] | cache-aside (`#[cached]`) | `product:<id>`, tagged `vendor:<vendor_id>` |
//! | [`Catalog::update_product`] | write-through (`#[cache_put]`) | stores `product:<id>` |
//! | [`Catalog::reprice_vendor`] | tag invalidation (`#[cache_invalidate]`) | voids every `vendor:<vendor_id>` entry |
//!
//! A tag is rendered from the function's arguments, so the product's entry needs its vendor before
//! it is read. A product never changes vendor: [`Catalog::product_vendor`] caches that mapping for
//! a day, and a read of a product costs two cache hits and no query.

use std::fmt;

use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache};
use serde::{Deserialize, Serialize};

use crate::db::{Database, DbError};

/// A product as stored and as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The product's id.
    pub id: u64,
    /// The vendor that sells it; it never changes.
    pub vendor_id: u64,
    /// Its display name.
    pub name: String,
    /// Its price, in cents.
    pub price_cents: i64,
}

/// What `PUT /products/{id}` may change.
#[derive(Debug, Clone, Deserialize)]
pub struct ProductUpdate {
    /// The new display name, not empty.
    pub name: String,
    /// The new price in cents, zero or more.
    pub price_cents: i64,
}

/// Why a catalog operation failed. `Clone`, so that callers waiting on the same load share its
/// error instead of each running the query again.
#[derive(Debug, Clone)]
pub enum CatalogError {
    /// No such product or vendor.
    NotFound,
    /// The request asks for something the catalog does not allow.
    Invalid(&'static str),
    /// The database failed.
    Database(DbError),
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogError::NotFound => f.write_str("not found"),
            CatalogError::Invalid(reason) => f.write_str(reason),
            CatalogError::Database(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for CatalogError {}

impl From<DbError> for CatalogError {
    fn from(error: DbError) -> Self {
        CatalogError::Database(error)
    }
}

/// The catalog: its database and the cache in front of it. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    db: Database,
    cache: Cache,
}

impl Catalog {
    /// A catalog reading `db` through `cache`.
    pub fn new(db: Database, cache: Cache) -> Catalog {
        Catalog { db, cache }
    }

    /// The cache in front of the database.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The product `id`: two cache hits once it has been read, and the current data after any
    /// write or reprice. An unknown id is an `Err`, never cached, so a product created later is
    /// found at once.
    pub async fn product(&self, id: u64) -> Result<Product, CatalogError> {
        let vendor_id = self.product_vendor(id).await?;
        self.product_of_vendor(id, vendor_id).await
    }

    /// The vendor of product `id`, which never changes.
    #[cached(
        cache = self.cache,
        name = "catalog.product_vendor",
        ttl = "1d",
        key = "product-vendor:<id>"
    )]
    pub async fn product_vendor(&self, id: u64) -> Result<u64, CatalogError> {
        self.db
            .product_vendor(id)
            .await?
            .ok_or(CatalogError::NotFound)
    }

    /// The product `id` of `vendor_id`, tagged with its vendor for [`Catalog::reprice_vendor`].
    /// Its ttl is the one [`Catalog::store_product`] writes with.
    #[cached(
        cache = self.cache,
        name = "catalog.product",
        ttl = "10m",
        key = "product:<id>",
        tags = ["vendor:<vendor_id>"]
    )]
    async fn product_of_vendor(&self, id: u64, vendor_id: u64) -> Result<Product, CatalogError> {
        self.db.product(id).await?.ok_or(CatalogError::NotFound)
    }

    /// Changes product `id`'s name and price, and returns it as stored. The cache holds the new
    /// product as soon as this returns: the next read is a hit with the new data.
    pub async fn update_product(
        &self,
        id: u64,
        update: ProductUpdate,
    ) -> Result<Product, CatalogError> {
        if update.name.trim().is_empty() {
            return Err(CatalogError::Invalid("a product needs a name"));
        }
        if update.price_cents < 0 {
            return Err(CatalogError::Invalid("a price cannot be negative"));
        }
        let vendor_id = self.product_vendor(id).await?;
        self.store_product(Product {
            id,
            vendor_id,
            name: update.name,
            price_cents: update.price_cents,
        })
        .await
    }

    /// Writes `product` to the database, then its `Ok` value to the cache under the key and tag
    /// [`Catalog::product_of_vendor`] reads; on `Err` the key is removed instead.
    #[cache_put(
        cache = self.cache,
        name = "catalog.store_product",
        ttl = "10m",
        key = "product:<product.id>",
        tags = ["vendor:<product.vendor_id>"]
    )]
    async fn store_product(&self, product: Product) -> Result<Product, CatalogError> {
        self.db
            .update_product(product)
            .await?
            .ok_or(CatalogError::NotFound)
    }

    /// Changes every price of `vendor_id` by `percent` in one SQL statement, then invalidates
    /// the tag `vendor:<vendor_id>`: every cached product of the vendor, however many, is
    /// reloaded on its next read. Returns how many products changed.
    #[cache_invalidate(cache = self.cache, tags = ["vendor:<vendor_id>"])]
    pub async fn reprice_vendor(
        &self,
        vendor_id: u64,
        percent: i64,
    ) -> Result<usize, CatalogError> {
        if percent <= -100 {
            return Err(CatalogError::Invalid("a price cut must be less than 100%"));
        }
        self.db
            .reprice_vendor(vendor_id, percent)
            .await?
            .ok_or(CatalogError::NotFound)
    }

    /// Invalidates every vendor's tag: for a database that was just seeded, which entries left
    /// in Redis by an earlier run may not match.
    pub async fn forget_cached_products(&self) -> Result<(), CatalogError> {
        for vendor_id in self.db.vendor_ids().await? {
            if let Err(error) = self
                .cache
                .invalidate_tag(&format!("vendor:{vendor_id}"))
                .await
            {
                // Queued by the cache and carried out once Redis answers.
                tracing::warn!(vendor_id, %error, "could not invalidate a vendor's products yet");
            }
        }
        Ok(())
    }
}

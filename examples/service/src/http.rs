//! The routes: JSON in and out, every failure an HTTP status with a JSON body.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, CatalogError, Product, ProductUpdate};

/// What every handler can reach.
#[derive(Clone)]
struct AppState {
    catalog: Catalog,
    metrics: PrometheusHandle,
}

/// The service's routes:
///
/// - `GET /products/{id}`: the product, read through the cache;
/// - `PUT /products/{id}` with `{"name": "...", "price_cents": 1200}`: write-through;
/// - `POST /vendors/{id}/reprice` with `{"percent": 10}`: a bulk update, then tag invalidation;
/// - `GET /metrics`: what `metrics` holds, in Prometheus's text format.
pub fn router(catalog: Catalog, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/products/{id}", get(get_product).put(put_product))
        .route("/vendors/{id}/reprice", post(reprice_vendor))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { catalog, metrics })
}

async fn get_product(
    State(state): State<AppState>,
    id: Result<Path<u64>, PathRejection>,
) -> Result<Json<Product>, ApiError> {
    let Path(id) = id?;
    Ok(Json(state.catalog.product(id).await?))
}

async fn put_product(
    State(state): State<AppState>,
    id: Result<Path<u64>, PathRejection>,
    update: Result<Json<ProductUpdate>, JsonRejection>,
) -> Result<Json<Product>, ApiError> {
    let Path(id) = id?;
    let Json(update) = update?;
    Ok(Json(state.catalog.update_product(id, update).await?))
}

/// The body of `POST /vendors/{id}/reprice`.
#[derive(Deserialize)]
struct Reprice {
    /// `10` raises every price by 10%, `-5` cuts it by 5%.
    percent: i64,
}

/// The answer to `POST /vendors/{id}/reprice`.
#[derive(Serialize)]
struct Repriced {
    vendor_id: u64,
    updated: usize,
}

async fn reprice_vendor(
    State(state): State<AppState>,
    vendor_id: Result<Path<u64>, PathRejection>,
    reprice: Result<Json<Reprice>, JsonRejection>,
) -> Result<Json<Repriced>, ApiError> {
    let Path(vendor_id) = vendor_id?;
    let Json(Reprice { percent }) = reprice?;
    let updated = state.catalog.reprice_vendor(vendor_id, percent).await?;
    Ok(Json(Repriced { vendor_id, updated }))
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// A failed request: its status and a message for the client.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        let status = match &error {
            CatalogError::NotFound => StatusCode::NOT_FOUND,
            CatalogError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CatalogError::Database(cause) => {
                tracing::error!(%cause, "request failed");
                // The database's message stays in the log.
                return ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "internal error".to_owned(),
                };
            }
        };
        ApiError {
            status,
            message: error.to_string(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

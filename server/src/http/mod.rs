//! The HTTP API (`docs/protocol.md`, `/openapi.json`). Every refusal is a
//! 4xx with a JSON error body naming the problem; every body is bounded
//! before it is read; nothing from the network is trusted before its
//! signature is checked. One module per endpoint family; the decisions
//! they call ([`crate::auth`], [`crate::ingest`], [`crate::publish`]) know
//! nothing of HTTP.

mod account;
mod codes;
mod coverage;
mod enroll;
mod error;
mod forms;
mod health;
mod log;
mod media;
mod middleware;
mod observers;
mod pages;
mod pvt;
mod request;
mod review;
mod scope;
mod session;
mod sms;
mod sms_log;
mod sync;
mod trace;
mod workspace;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use observer_core::identity::SigningKey;
use observer_core::seal::OrgSecretKey;

pub use error::ApiError;
pub use health::MIN_FREE_BYTES;

use crate::body::BodyPolicy;
use crate::ingest::{FormCache, GroupCommit, Ingest};
use crate::media::Media;
use crate::metrics::Metrics;
use crate::rate::RateLimits;
use crate::storage::Storage;

/// The OpenAPI description served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Largest enrollment or updates request (a token or a heartbeat).
const MAX_SMALL_REQUEST_BYTES: usize = 16 * 1024;

/// What every handler shares.
pub struct AppState {
    /// The database.
    pub storage: Arc<dyn Storage>,
    /// The coordinator's receipt-signing key.
    pub key: SigningKey,
    /// The organisation's key for sealed records.
    pub seal: OrgSecretKey,
    /// Evidence media, received resumably.
    pub media: Arc<Media>,
    /// The organisation id.
    pub org: String,
    /// What enrollment codes issued in the workspace name.
    pub issuer: crate::enrollment::CodeIssuer,
    /// Sign-ins being checked at once: each Argon2 hash takes 19 MiB and
    /// tens of milliseconds of a core, so a flood of them waits here.
    pub login_slots: Arc<tokio::sync::Semaphore>,
    /// Parsed form versions.
    pub forms: FormCache,
    /// How request bodies are read: size, pace, memory budget.
    pub body: BodyPolicy,
    /// Request rates per address and per device.
    pub rates: RateLimits,
    /// Batches being verified and stored at once: each holds a decompressed
    /// batch in memory and a blocking thread, so they are bounded.
    pub ingest_slots: Arc<tokio::sync::Semaphore>,
    /// Batches in flight, bounded: beyond it, 503 before reading.
    pub backlog: Arc<crate::backlog::Backlog>,
    /// Verified batches wait here for their durable (group) commit.
    pub commits: GroupCommit,
    /// Signed receipts wait here to be kept for evidence packages.
    pub receipts: crate::receipts::ReceiptArchive,
    /// Directories whose free space the health check watches.
    pub disks: Vec<PathBuf>,
    /// What `/metrics` reports.
    pub metrics: Arc<Metrics>,
    /// When reports corroborate each other.
    pub corroboration: crate::review::CorroborationRule,
    /// The quick count's sampled stations, which the updates name.
    pub sampled: crate::pvt::store::SampledStations,
    /// The SMS gateway's number, which the updates name.
    pub sms_number: crate::sms::NumberCache,
    /// The published form versions, which the updates carry.
    pub published: crate::updates::PublishedForms,
    /// The witnesses and the witnessed checkpoint, which syncs name.
    pub witnesses: crate::witnesses::CurrentCache,
    /// The centre's time zone as last read from the day's plan, and when.
    pub zone: std::sync::RwLock<Option<(std::time::Instant, chrono_tz::Tz)>>,
}

/// How long a node believes the time zone it read (another node may have
/// changed the plan).
const ZONE_FOR: std::time::Duration = std::time::Duration::from_secs(10);

impl AppState {
    /// The centre's time zone: the day's plan's, read at most every
    /// `ZONE_FOR`; UTC when it cannot be read.
    pub async fn zone(self: &Arc<Self>) -> chrono_tz::Tz {
        let known = *self.zone.read().unwrap_or_else(|p| p.into_inner());
        if let Some((at, zone)) = known
            && at.elapsed() < ZONE_FOR
        {
            return zone;
        }
        let app = self.clone();
        let read =
            tokio::task::spawn_blocking(move || crate::coverage::plan(app.storage.as_ref())).await;
        let zone = match read {
            Ok(Ok(plan)) => plan.zone(),
            _ => known.map_or(chrono_tz::UTC, |(_, z)| z),
        };
        *self.zone.write().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), zone));
        zone
    }

    /// Forgets the time zone read, after this node changed the plan.
    pub fn forget_zone(&self) {
        *self.zone.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl AppState {
    /// What a batch is decided with.
    fn ingest(&self) -> Ingest<'_> {
        Ingest {
            storage: self.storage.as_ref(),
            rates: &self.rates,
            org: &self.org,
            key: &self.key,
            seal: &self.seal,
            forms: &self.forms,
        }
    }
}

/// Largest form the workspace accepts (a sign-in, a new account).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// Largest batch of observers (1,000 lines of a name and a few stations).
const MAX_BATCH_FORM_BYTES: usize = 256 * 1024;

/// The workspace: pages behind a session, their forms bounded.
fn workspace_routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(workspace::overview_page))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/language", get(session::set_language))
        .route("/account", get(account::account))
        .route("/account/totp", post(account::start_totp))
        .route("/account/totp/confirm", post(account::confirm_totp))
        .route("/account/totp/remove", post(account::remove_totp))
        .route("/audit", get(workspace::audit_page))
        .route(
            "/users",
            get(workspace::users_page).post(workspace::add_user),
        )
        .route("/users/{name}/{change}", post(workspace::set_user_disabled))
        .route(
            "/devices/{id}/revoke",
            get(workspace::revoke_page).post(workspace::revoke),
        )
        .route("/codes", get(codes::codes_page).post(codes::issue_code))
        .route("/api/v1/codes", get(codes::codes_json))
        .route("/observers", get(observers::observers_page))
        .route("/api/v1/observers", get(observers::observers_json))
        .route("/queue", get(review::queue_page))
        .route("/records/{index}", get(review::record_page))
        .route("/records/{index}/claim", post(review::claim))
        .route("/records/{index}/release", post(review::release))
        .route("/records/{index}/review", post(review::decide))
        .route("/records/{index}/media/{sha256}", get(review::evidence))
        .route("/coverage", get(coverage::coverage_page))
        .route("/coverage/plan", post(coverage::set_plan))
        .route("/static/live.js", get(coverage::live_js))
        .route("/api/v1/queue", get(review::queue_json))
        .route("/api/v1/records/{index}", get(review::record_json))
        .route("/api/v1/coverage", get(coverage::coverage_json))
        .route("/api/v1/overview", get(workspace::overview_json))
        .route("/api/v1/audit", get(workspace::audit_json))
        .route("/api/v1/users", get(workspace::users_json))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .route("/api/v1/forms", get(forms::forms_json))
        // A pasted form definition is read by the body policy, bounded
        // there (`forms::MAX_BODY_BYTES`).
        .route("/forms", get(forms::forms_page).post(forms::publish_form))
        .route("/forms/xlsx", post(forms::convert_workbook))
        .route("/sms", get(sms_log::sms_page))
        .route("/api/v1/sms", get(sms_log::sms_json))
        .route("/pvt", get(pvt::pvt_page))
        .route("/api/v1/pvt", get(pvt::pvt_json))
        // A batch of observers is a longer form than any other.
        .route(
            "/codes/batch",
            post(codes::issue_batch).layer(DefaultBodyLimit::max(MAX_BATCH_FORM_BYTES)),
        )
        .layer(axum::middleware::from_fn_with_state(
            state,
            middleware::language,
        ))
}

/// The API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(workspace_routes(state.clone()))
        .route("/healthz", get(health::healthz))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/v1/enroll", post(enroll::enroll))
        .route("/v1/records", post(sync::records))
        .route("/v1/sealed", post(sync::sealed_outbox))
        .route("/v1/sms/twilio", post(sms::twilio))
        .route("/v1/sms/android", post(sms::android))
        .route("/v1/updates", post(sync::updates))
        .route("/v2/sync", post(sync::sync))
        .route("/v1/media/{sha256}", get(media::state).put(media::put))
        .route("/v1/log/checkpoint", get(log::checkpoint))
        .route("/v1/log/witnessed", get(log::witnessed))
        .route("/v1/log/inclusion", get(log::inclusion))
        .route("/v1/log/consistency", get(log::consistency))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method; see /openapi.json",
            )
        })
        // Bodies are bounded by each handler, with JSON errors.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(middleware::header_limits))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::rate_by_address,
        ))
        .layer(axum::middleware::from_fn(middleware::answer_headers))
        .layer(trace::layer(state.metrics.clone()))
        .with_state(state)
}

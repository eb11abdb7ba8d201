//! What every request passes before a handler runs, and what every answer
//! carries: the per-address rate, the header limits (a JSON 431, not the
//! parser's bare one), and headers that keep answers out of caches and
//! referrers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::guard::{AddressKey, ClientAddr};
use crate::limits::{MAX_HEADER_BYTES, MAX_HEADER_COUNT};

/// Refuses a request over its address's rate (429 with `Retry-After`).
pub async fn rate_by_address(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    // Put there by `serve`'s acceptor (the peer, or the client a trusted
    // balancer named); an in-process test router without it is not
    // rate-limited by address.
    if let Some(ClientAddr(client)) = request.extensions().get::<ClientAddr>()
        && let Err(limited) = app.rates.address(AddressKey::of(client.ip()))
    {
        return ApiError::rate_limited(limited).into_response();
    }
    next.run(request).await
}

/// Answers in the reader's language (`crate::i18n::current` for pages),
/// with times in the centre's time zone.
pub async fn language(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let lang = super::session::request_language(request.headers());
    let zone = app.zone().await;
    crate::i18n::scope(lang, zone, next.run(request)).await
}

/// Refuses a request whose header section is over [`MAX_HEADER_BYTES`] or
/// [`MAX_HEADER_COUNT`] fields, with the JSON error every answer has.
pub async fn header_limits(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + request.uri().to_string().len();
    if headers.len() > MAX_HEADER_COUNT || bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "{} header fields, {bytes} bytes with the target: at most {MAX_HEADER_COUNT} fields and {MAX_HEADER_BYTES} bytes",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Answers are never cached (they hold receipts, assignments, evidence),
/// never leak the URL (the web view's token) as a referrer, and are never
/// sniffed as another type or framed by another site.
pub async fn answer_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; media-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    response
}

//! One span per request and one event when it is answered: the route (the
//! pattern, never the URL: the web view's token may ride in its query),
//! the device once it has proved itself, the batch's counts, the status and
//! the latency. Nothing an observer wrote, no station, no name.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnBodyChunk, DefaultOnEos, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use tracing::field::Empty;

use crate::metrics::Metrics;

/// The trace layer the router wraps every request in.
pub fn layer(
    metrics: Arc<Metrics>,
) -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    (),
    Answered,
    DefaultOnBodyChunk,
    DefaultOnEos,
    (),
> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(Answered { metrics })
        .on_failure(())
}

/// Opens a request's span.
#[derive(Clone)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        tracing::info_span!(
            "request",
            method = %request.method(),
            route,
            device = Empty,
            accepted = Empty,
            already = Empty,
            rejected = Empty,
        )
    }
}

/// Logs the answer and counts it.
#[derive(Clone)]
pub struct Answered {
    metrics: Arc<Metrics>,
}

impl<B> OnResponse<B> for Answered {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        let status = response.status().as_u16();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if response.status().is_server_error() {
            tracing::warn!(status, latency_ms, "answered");
        } else {
            tracing::info!(status, latency_ms, "answered");
        }
        self.metrics.answered(status);
    }
}

//! `POST /v1/enroll`: a phone trades a one-time code for enrollment, proving
//! it holds the key it enrolls.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use observer_core::protocol::{EnrollRequest, EnrollResponse};
use observer_core::record::Sha256Digest;

use super::request::{blocking, now_ms, parse, read_body, require_json};
use super::{ApiError, AppState, MAX_SMALL_REQUEST_BYTES};
use crate::storage::TokenProblem;

pub async fn enroll(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EnrollResponse>, ApiError> {
    require_json(&headers)?;
    let held = read_body(&app, body, MAX_SMALL_REQUEST_BYTES).await?;
    let req: EnrollRequest = parse("enrollment request", &headers, &held.bytes)?;
    if req.name.as_ref().is_some_and(|n| n.len() > 128) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_name",
            "the name is over 128 bytes",
        ));
    }
    if !req
        .public_key
        .verify(&EnrollRequest::proof_message(&req.token), &req.proof)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_proof",
            "the proof of key possession does not verify",
        ));
    }
    let app2 = app.clone();
    let info = blocking(move || {
        let hash = Sha256Digest::of(req.token.as_bytes());
        let enrolled =
            app2.storage
                .enroll(&hash, &req.public_key, req.name.as_deref(), now_ms())?;
        // Who enrolled which key, signed into the audit chain: what an
        // evidence package shows for each device.
        if let Ok(info) = &enrolled {
            crate::audit::append(
                app2.storage.as_ref(),
                &app2.key,
                crate::audit::Draft {
                    actor: "enrollment code".into(),
                    action: "device.enrolled",
                    subject: info.id.to_string(),
                    detail: serde_json::json!({
                        "key": info.key.to_string(),
                        "stations": info.stations,
                    }),
                },
                now_ms(),
            )?;
        }
        let number = app2.sms_number.get(app2.storage.as_ref())?;
        Ok((enrolled, number))
    })
    .await?;
    let (enrolled, sms_number) = info;
    let info = enrolled.map_err(|p| {
        tracing::info!(problem = ?p, "enrollment refused");
        match p {
            TokenProblem::Unknown => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_unknown",
                "this enrollment code is not known to the coordinator; ask for a new one",
            ),
            TokenProblem::Used => ApiError::new(
                StatusCode::CONFLICT,
                "token_used",
                "this enrollment code was used already; each code enrolls one phone",
            ),
            TokenProblem::Expired => ApiError::new(
                StatusCode::GONE,
                "token_expired",
                "this enrollment code has expired; ask for a new one",
            ),
            TokenProblem::DeviceRevoked => ApiError::revoked(),
        }
    })?;
    tracing::Span::current().record("device", tracing::field::display(&info.id));
    tracing::info!(device = %info.id, stations = info.stations.len(), "device enrolled");
    app.metrics.enrolled();
    Ok(Json(EnrollResponse {
        device: info.id,
        org: app.org.clone(),
        stations: info.stations,
        server_time_ms: now_ms(),
        seal_key: Some(app.seal.public_key()),
        sms_number,
    }))
}

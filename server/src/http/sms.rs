//! The SMS gateways' webhooks: `POST /v1/sms/twilio` (form-encoded, Twilio's
//! request signature) and `POST /v1/sms/android` ("SMS Gateway for
//! Android" on an organisation's own phone: JSON, an HMAC-SHA256 signature
//! and timestamp). A request whose signature does not verify is refused
//! before its text is read and changes nothing; a gateway not set up
//! (`observer-server sms gateways`) is not found. What a text comes to is
//! [`crate::sms`]'s decision.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use ring::hmac;

use super::request::{blocking, now_ms, read_body};
use super::{ApiError, AppState};
use crate::sms::{AndroidSend, GatewaySettings, Gateways, MAX_TEXT_CHARS};
use crate::storage::SmsLogEntry;

/// Largest webhook body.
const MAX_WEBHOOK_BYTES: usize = 16 * 1024;

/// How far an Android gateway's timestamp may be from this server's clock.
const MAX_SKEW_SECS: i64 = 300;

fn forged() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "bad_gateway_signature",
        "the request is not signed by a gateway this coordinator is set up for",
    )
}

async fn gateways(app: &Arc<AppState>) -> Result<Gateways, ApiError> {
    let app = app.clone();
    blocking(move || {
        let settings = GatewaySettings::load(app.storage.as_ref())
            .map_err(|e| ApiError::internal("the SMS gateway settings", &e))?
            .ok_or_else(ApiError::not_found)?;
        settings
            .open(&app.seal)
            .map_err(|e| ApiError::internal("the SMS gateway settings", &e))
    })
    .await
}

/// Takes one text (after its gateway's signature verified): what it came
/// to, and the receipt's texts to send back (none unless a record settled).
async fn take(
    app: &Arc<AppState>,
    gateway: &'static str,
    sender: String,
    text: String,
    expiry_ms: i64,
) -> Result<(&'static str, Vec<String>), ApiError> {
    if text.chars().count() > MAX_TEXT_CHARS || sender.len() > 64 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "sms_too_long",
            format!("an SMS report part is at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    let app2 = app.clone();
    let received = blocking(move || {
        crate::sms::receive(&app2.ingest(), gateway, &sender, &text, now_ms(), expiry_ms)
            .map_err(|e| ApiError::from(crate::ingest::IngestError::from(e)))
    })
    .await?;
    if let Some(s) = &received.settled {
        app.receipts.keep(crate::receipts::StoredReceipt {
            device: s.receipt.device.clone(),
            server_time_ms: s.receipt.server_time_ms,
            signed: s.signed.clone(),
        });
    }
    Ok((received.outcome, received.reply()))
}

/// A TwiML answer: Twilio texts each message back to the sender, from the
/// gateway number. Askama escapes the texts for XML.
#[derive(askama::Template)]
#[template(path = "twiml.xml")]
struct TwiMl {
    messages: Vec<String>,
}

/// What Twilio signs (HMAC-SHA1 with the auth token, base64 in
/// `X-Twilio-Signature`): the URL it posted to, then every parameter
/// sorted by name, as name then value.
fn twilio_signed_data(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    data
}

pub async fn twilio(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let g = gateways(&app).await?;
    let (token, url) = g.twilio.as_ref().ok_or_else(ApiError::not_found)?;
    let held = read_body(&app, body, MAX_WEBHOOK_BYTES).await?;
    let params: Vec<(String, String)> = form_urlencoded::parse(&held.bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let given = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .ok_or_else(forged)?;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token);
    hmac::verify(&key, twilio_signed_data(url, &params).as_bytes(), &given)
        .map_err(|_| forged())?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_webhook",
                    format!("the webhook has no {name}"),
                )
            })
    };
    let (_, messages) = take(&app, "twilio", param("From")?, param("Body")?, g.expiry_ms).await?;
    let twiml = askama::Template::render(&TwiMl { messages })
        .map_err(|e| ApiError::internal("the TwiML answer", &e))?;
    Ok(([(header::CONTENT_TYPE, "text/xml")], twiml).into_response())
}

#[derive(serde::Deserialize)]
struct AndroidEvent {
    event: String,
    #[serde(default)]
    payload: Option<AndroidMessage>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AndroidMessage {
    message: String,
    phone_number: String,
}

pub async fn android(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let g = gateways(&app).await?;
    let key = g.android.as_ref().ok_or_else(ApiError::not_found)?;
    let held = read_body(&app, body, MAX_WEBHOOK_BYTES).await?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp = header("x-timestamp").ok_or_else(forged)?;
    let signature = header("x-signature")
        .and_then(|s| hex::decode(s.trim()).ok())
        .ok_or_else(forged)?;
    let at: i64 = timestamp.trim().parse().map_err(|_| forged())?;
    if (now_ms() / 1000 - at).abs() > MAX_SKEW_SECS {
        return Err(forged());
    }
    let mut signed = held.bytes.to_vec();
    signed.extend_from_slice(timestamp.as_bytes());
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), &signed, &signature)
        .map_err(|_| forged())?;
    let event: AndroidEvent = serde_json::from_slice(&held.bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_webhook", e.to_string()))?;
    let outcome = match (event.event.as_str(), event.payload) {
        ("sms:received", Some(m)) => {
            let (outcome, receipt) = take(
                &app,
                "android",
                m.phone_number.clone(),
                m.message,
                g.expiry_ms,
            )
            .await?;
            if let Some(send) = g.android_send
                && !receipt.is_empty()
            {
                text_back(app.clone(), send, m.phone_number, receipt);
            }
            outcome
        }
        _ => "ignored",
    };
    Ok(Json(serde_json::json!({ "outcome": outcome })))
}

/// How long one call to the Android gateway's API may take.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Pauses before the second and third tries of a text.
const SEND_RETRY: [std::time::Duration; 2] = [
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(2),
];

/// Texts a receipt back through SMS Gateway for Android's own API
/// (`POST {"phoneNumbers": [to], "textMessage": {"text": ...}}` with Basic
/// credentials), after the webhook has answered: the gateway waits for no
/// one. Each text is tried three times; one that could not be sent is
/// logged `receipt_unsent` with the number (the phone hears of delivery
/// at its next internet sync all the same).
fn text_back(app: Arc<AppState>, send: AndroidSend, to: String, texts: Vec<String>) {
    static CLIENT: std::sync::OnceLock<Result<reqwest::Client, String>> =
        std::sync::OnceLock::new();
    tokio::spawn(async move {
        let client = match CLIENT.get_or_init(crate::witnesses::client) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "no HTTP client for the Android gateway");
                return;
            }
        };
        let password = String::from_utf8_lossy(&send.password).into_owned();
        for text in texts {
            let body = serde_json::json!({"phoneNumbers": [to], "textMessage": {"text": text}});
            let mut problem = String::new();
            for pause in std::iter::once(None).chain(SEND_RETRY.iter().map(Some)) {
                if let Some(p) = pause {
                    tokio::time::sleep(*p).await;
                }
                let answer = client
                    .post(&send.url)
                    .basic_auth(&send.user, Some(&password))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.to_string())
                    .timeout(SEND_TIMEOUT)
                    .send()
                    .await;
                match answer {
                    Ok(a) if a.status().is_success() => {
                        problem.clear();
                        break;
                    }
                    Ok(a) => problem = format!("the gateway answered {}", a.status().as_u16()),
                    Err(e) => problem = format!("the gateway could not be reached: {e}"),
                }
            }
            if problem.is_empty() {
                tracing::info!("a receipt text handed to the Android gateway");
                continue;
            }
            tracing::warn!(problem = %problem, "a receipt could not be texted back");
            let entry = SmsLogEntry {
                at_ms: now_ms(),
                sender: to.clone(),
                gateway: "android".into(),
                outcome: "receipt_unsent".into(),
                detail: problem,
            };
            let app = app.clone();
            let logged = blocking(move || {
                app.storage
                    .sms_store()
                    .log_sms(&entry)
                    .map_err(|e| ApiError::internal("the SMS log", &e))
            })
            .await;
            if logged.is_err() {
                tracing::error!("an unsent receipt could not be logged");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    /// Twilio's documented example: this token, URL and parameters give
    /// this signature.
    #[test]
    fn the_twilio_signature_matches_its_documented_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let data =
            super::twilio_signed_data("https://mycompany.com/myapp.php?foo=1&bar=2", &params);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"12345");
        use base64::Engine as _;
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .encode(ring::hmac::sign(&key, data.as_bytes())),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }
}

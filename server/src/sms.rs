//! SMS reports as the coordinator receives them from its gateways: each
//! text is a part of a signed record or heartbeat (`observer_core::sms`);
//! parts wait in storage until their message is whole (in any order, a
//! copy counted once) or expires; a whole message is rebuilt to the exact
//! signed bytes and ingested like any record, so the same record arriving
//! later over the internet is `already`. The sender's number is kept in the
//! SMS log and never taken as identity: the signature is. Decisions only;
//! the gateways' HTTP is `http::sms`.

use std::sync::Arc;

use observer_core::forms::FormDefinition;
use observer_core::protocol::WireRecord;
use observer_core::seal::{OrgPublicKey, OrgSecretKey, open_secret, seal_secret};
use observer_core::sms::{self, Context, SmsError, Unpacked};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ingest::{Ingest, IngestError, Settled};
use crate::remembered::Remembered;
use crate::storage::{SmsLogEntry, Storage, StorageError};

/// Where the gateway settings are kept (`meta`), their secrets sealed to
/// the organisation's key.
pub const GATEWAYS_META: &str = "sms.gateways";

/// How long the parts of an incomplete message are kept by default.
pub const DEFAULT_EXPIRY_HOURS: u32 = 48;

/// Most parts waiting from one number: enough for 16 reports of the
/// longest kind at once.
pub const MAX_PARTS_PER_SENDER: u64 = 256;

/// Every outcome the SMS log holds (`docs/protocol.md`, "The
/// coordinator's gateways"); the workspace names each in its language.
pub const OUTCOMES: [&str; 14] = [
    "waiting",
    "accepted",
    "already",
    "rejected",
    "bad_signature",
    "unknown_device",
    "heartbeat",
    "altered",
    "malformed",
    "unknown_form",
    "not_a_report",
    "too_many_waiting",
    "expired",
    "receipt_unsent",
];

/// What `sms status` and the workspace show: how the gateways are set up,
/// the messages waiting for parts, and the newest texts.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The gateways (no secrets).
    pub gateways: Setup,
    /// Messages waiting for parts, oldest first.
    pub waiting: Vec<crate::storage::WaitingSms>,
    /// The newest texts, newest first.
    pub log: Vec<SmsLogEntry>,
}

/// The gateways as set up, without their secrets.
#[derive(Debug, Default, Serialize)]
pub struct Setup {
    /// The URL Twilio posts to, when Twilio is set up.
    pub twilio_url: Option<String>,
    /// Whether SMS Gateway for Android is set up.
    pub android: bool,
    /// Its send API, when receipts are texted back through it.
    pub android_send_url: Option<String>,
    /// The number phones text.
    pub number: Option<String>,
    /// Hours an incomplete message is kept.
    pub expiry_hours: u32,
}

impl Status {
    /// Reads it: the newest `limit` texts.
    pub fn read(storage: &dyn Storage, limit: u32) -> Result<Self, GatewayError> {
        let settings = GatewaySettings::load(storage)?;
        let gateways = settings.map_or_else(
            || Setup {
                expiry_hours: DEFAULT_EXPIRY_HOURS,
                ..Setup::default()
            },
            |s| Setup {
                twilio_url: s.twilio.map(|t| t.url),
                android: s.android.is_some(),
                android_send_url: s.android_send.map(|a| a.url),
                number: s.number,
                expiry_hours: s.expiry_hours,
            },
        );
        let sms = storage.sms_store();
        Ok(Self {
            gateways,
            waiting: sms.sms_waiting()?,
            log: sms.sms_log(limit)?,
        })
    }
}

/// Longest text a gateway may hand over (a part is one segment; this
/// leaves room for a gateway's own padding).
pub const MAX_TEXT_CHARS: usize = 480;

/// The gateways this coordinator takes SMS from, as kept in `meta`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Twilio: the auth token (sealed) and the exact public URL Twilio
    /// posts to (its signature covers it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio: Option<SealedTwilio>,
    /// "SMS Gateway for Android" (an observer organisation's own phone):
    /// the webhook signing key (sealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android: Option<String>,
    /// Where that gateway's own API sends texts, for receipts texted back
    /// (its webhooks cannot answer with a text, unlike Twilio's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android_send: Option<SealedAndroidSend>,
    /// Hours an incomplete message's parts are kept.
    pub expiry_hours: u32,
    /// The number observers text their reports to, which phones learn
    /// with their updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

/// Twilio's settings, the token sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedTwilio {
    /// The auth token, sealed (hex).
    pub token: String,
    /// The URL configured at Twilio for incoming messages.
    pub url: String,
}

/// The Android gateway's API for sending (its local server
/// `http://PHONE:8080/message`, or its cloud's
/// `https://api.sms-gate.app/3rdparty/v1/message`) and its Basic
/// credentials, the password sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedAndroidSend {
    /// The `message` endpoint's URL.
    pub url: String,
    /// The API user.
    pub user: String,
    /// The API password, sealed (hex).
    pub password: String,
}

/// The Android gateway's send API, its password opened.
pub struct AndroidSend {
    /// The `message` endpoint's URL.
    pub url: String,
    /// The API user.
    pub user: String,
    /// The API password.
    pub password: Zeroizing<Vec<u8>>,
}

/// The gateways' secrets, opened.
pub struct Gateways {
    /// Twilio's auth token and URL.
    pub twilio: Option<(Zeroizing<Vec<u8>>, String)>,
    /// The Android gateway's signing key.
    pub android: Option<Zeroizing<Vec<u8>>>,
    /// The Android gateway's send API, when receipts are texted back.
    pub android_send: Option<AndroidSend>,
    /// Milliseconds an incomplete message is kept.
    pub expiry_ms: i64,
}

/// Why the gateway settings could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The stored settings do not open with this organisation's key.
    #[error("the stored SMS gateway settings do not open: {0}")]
    Unreadable(String),
}

fn context(gateway: &str) -> Vec<u8> {
    format!("sms-gateway\0{gateway}").into_bytes()
}

impl GatewaySettings {
    /// Settings with `twilio` (token, URL), `android` (key) and
    /// `android_send` (URL, user, password) sealed to `org`.
    pub fn seal(
        org: &OrgPublicKey,
        twilio: Option<(&[u8], &str)>,
        android: Option<&[u8]>,
        android_send: Option<(&str, &str, &[u8])>,
        number: Option<&str>,
        expiry_hours: u32,
    ) -> Result<Self, GatewayError> {
        let sealed = |name: &str, secret: &[u8]| {
            seal_secret(org, &context(name), secret)
                .map(hex::encode)
                .map_err(|e| GatewayError::Unreadable(e.to_string()))
        };
        Ok(Self {
            twilio: twilio
                .map(|(token, url)| {
                    Ok::<_, GatewayError>(SealedTwilio {
                        token: sealed("twilio", token)?,
                        url: url.to_string(),
                    })
                })
                .transpose()?,
            android: android.map(|key| sealed("android", key)).transpose()?,
            android_send: android_send
                .map(|(url, user, password)| {
                    Ok::<_, GatewayError>(SealedAndroidSend {
                        url: url.to_string(),
                        user: user.to_string(),
                        password: sealed("android-send", password)?,
                    })
                })
                .transpose()?,
            expiry_hours: expiry_hours.max(1),
            number: number.map(str::to_string),
        })
    }

    /// The settings kept, if any.
    pub fn load(storage: &dyn Storage) -> Result<Option<Self>, GatewayError> {
        storage
            .meta(GATEWAYS_META)?
            .map(|b| {
                serde_json::from_slice(&b).map_err(|e| GatewayError::Unreadable(e.to_string()))
            })
            .transpose()
    }

    /// Keeps these settings.
    pub fn store(&self, storage: &dyn Storage) -> Result<(), GatewayError> {
        let bytes = serde_json::to_vec(self).expect("settings serialise");
        Ok(storage.set_metas(&[(GATEWAYS_META, bytes)])?)
    }

    /// Opens the secrets with the organisation's key.
    pub fn open(&self, org: &OrgSecretKey) -> Result<Gateways, GatewayError> {
        let opened = |name: &str, sealed: &str| {
            let bytes = hex::decode(sealed).map_err(|e| GatewayError::Unreadable(e.to_string()))?;
            open_secret(org, &context(name), &bytes)
                .map_err(|e| GatewayError::Unreadable(e.to_string()))
        };
        Ok(Gateways {
            twilio: self
                .twilio
                .as_ref()
                .map(|t| Ok::<_, GatewayError>((opened("twilio", &t.token)?, t.url.clone())))
                .transpose()?,
            android: self
                .android
                .as_ref()
                .map(|k| opened("android", k))
                .transpose()?,
            android_send: self
                .android_send
                .as_ref()
                .map(|s| {
                    Ok::<_, GatewayError>(AndroidSend {
                        url: s.url.clone(),
                        user: s.user.clone(),
                        password: opened("android-send", &s.password)?,
                    })
                })
                .transpose()?,
            expiry_ms: i64::from(self.expiry_hours) * 3_600_000,
        })
    }
}

/// How long the gateway number read from the settings is believed: a
/// change reaches phones at their next sync after it.
const NUMBER_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// The gateway number phones are told, read from the settings at most
/// every few seconds rather than at every sync.
pub struct NumberCache(Remembered<Option<String>>);

impl Default for NumberCache {
    fn default() -> Self {
        Self(Remembered::new(NUMBER_FOR))
    }
}

impl NumberCache {
    /// The number now, if one is set.
    pub fn get(&self, storage: &dyn Storage) -> Result<Option<String>, StorageError> {
        self.0.get(|| match GatewaySettings::load(storage) {
            Ok(s) => Ok(s.and_then(|s| s.number)),
            Err(GatewayError::Storage(e)) => Err(e),
            // Unreadable settings name no number; `sms status` and the
            // webhooks say why.
            Err(GatewayError::Unreadable(_)) => Ok(None),
        })
    }
}

/// What one received text came to: the code kept in the SMS log, and the
/// receipt when a whole record or heartbeat was ingested.
#[derive(Debug)]
pub struct Received {
    /// See [`SmsLogEntry::outcome`].
    pub outcome: &'static str,
    /// A sentence for people.
    pub detail: String,
    /// The signed receipt, when a message was ingested.
    pub settled: Option<Settled>,
}

impl Received {
    /// The coordinator's receipt as SMS texts, for the gateway to text
    /// back to the sender: only when a record was stored or was held
    /// already (a refusal's reason waits for the phone's next sync, and a
    /// heartbeat settles nothing). Anyone may text a copy of a report and
    /// be answered with its receipt, which tells them nothing the report
    /// did not.
    pub fn reply(&self) -> Vec<String> {
        let Some(s) = &self.settled else {
            return Vec::new();
        };
        if !matches!(self.outcome, "accepted" | "already") {
            return Vec::new();
        }
        sms::receipt_parts(&s.signed).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "a receipt could not be written as SMS");
            Vec::new()
        })
    }

    fn said(outcome: &'static str, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            detail: detail.into(),
            settled: None,
        }
    }
}

/// The coordinator's side of unpacking: its organisation and its forms
/// (shipped and published).
struct Coordinator<'a> {
    ingest: &'a Ingest<'a>,
}

impl Context for Coordinator<'_> {
    fn org(&self) -> Option<&str> {
        Some(self.ingest.org)
    }
    fn form(&self, id: &str, version: u32) -> Option<FormDefinition> {
        self.ingest
            .forms
            .get(self.ingest.storage, id, version)
            .ok()
            .flatten()
            .map(Arc::unwrap_or_clone)
    }
}

/// The device a rebuilt record names.
#[derive(Deserialize)]
struct Names {
    device: observer_core::identity::DeviceId,
}

/// Takes one text from `sender` through `gateway`: expires old parts,
/// holds this one, and when its message is whole rebuilds and ingests it.
/// Every outcome is written to the SMS log with the sender's number.
pub fn receive(
    ingest: &Ingest<'_>,
    gateway: &str,
    sender: &str,
    text: &str,
    now_ms: i64,
    expiry_ms: i64,
) -> Result<Received, StorageError> {
    let store = ingest.storage.sms_store();
    let log = |outcome: &str, detail: &str| {
        store.log_sms(&SmsLogEntry {
            at_ms: now_ms,
            sender: sender.to_string(),
            gateway: gateway.to_string(),
            outcome: outcome.to_string(),
            detail: detail.to_string(),
        })
    };
    for w in store.expire_sms(now_ms - expiry_ms)? {
        store.log_sms(&SmsLogEntry {
            at_ms: now_ms,
            sender: w.sender,
            gateway: gateway.to_string(),
            outcome: "expired".into(),
            detail: format!(
                "message {} expired with {} of {} parts",
                w.message, w.held, w.total
            ),
        })?;
    }
    let received = decide(ingest, sender, text, now_ms)?;
    log(received.outcome, &received.detail)?;
    tracing::info!(gateway, outcome = received.outcome, "sms received");
    Ok(received)
}

fn decide(
    ingest: &Ingest<'_>,
    sender: &str,
    text: &str,
    now_ms: i64,
) -> Result<Received, StorageError> {
    let part = match sms::parse(text) {
        Ok(p) => p,
        Err(SmsError::NotAPart) => {
            return Ok(Received::said("not_a_report", "not an Observer report"));
        }
        Err(e @ SmsError::AlteredPart { .. }) => {
            return Ok(Received::said("altered", e.to_string()));
        }
        Err(e) => return Ok(Received::said("malformed", e.to_string())),
    };
    let store = ingest.storage.sms_store();
    // A number sending parts that never complete (a flood, a broken
    // phone) is held to a bound; its complete reports still arrive once
    // its old parts expire.
    if store.sms_parts_held(sender)? >= MAX_PARTS_PER_SENDER {
        return Ok(Received::said(
            "too_many_waiting",
            format!("{MAX_PARTS_PER_SENDER} parts from this number already wait; not kept"),
        ));
    }
    let held = store.hold_sms_part(sender, &part, now_ms)?;
    if held.len() < part.total {
        return Ok(Received::said(
            "waiting",
            format!(
                "message {}: part {} of {} held, {} of {} so far",
                part.message,
                part.index + 1,
                part.total,
                held.len(),
                part.total
            ),
        ));
    }
    // Whole: whatever it comes to, its parts are done with.
    store.drop_sms_message(sender, &part.message, part.total)?;
    let bytes = match sms::join(&held) {
        Ok(b) => b,
        Err(e) => return Ok(Received::said("malformed", e.to_string())),
    };
    let unpacked = match sms::unpack(&bytes, &Coordinator { ingest }) {
        Ok(u) => u,
        Err(e @ SmsError::UnknownForm { .. }) => {
            return Ok(Received::said("unknown_form", e.to_string()));
        }
        Err(e) => return Ok(Received::said("malformed", e.to_string())),
    };
    let (settled, record) = match unpacked {
        Unpacked::Record(env) => (ingest.sms_record(&WireRecord::from(&env)), Some(env)),
        Unpacked::Heartbeat(hb) => (ingest.sms_heartbeat(&hb), None),
    };
    Ok(match settled {
        Ok(s) => {
            let r = &s.receipt;
            let (outcome, detail) = if let Some(a) = r.accepted.first() {
                (
                    "accepted",
                    format!("record {} (seq {}) stored", a.id, a.seq),
                )
            } else if let Some(a) = r.already.first() {
                (
                    "already",
                    format!("record {} (seq {}) already held", a.id, a.seq),
                )
            } else if let Some(x) = r.rejected.first() {
                (
                    if x.reason == observer_core::protocol::RejectReason::BadSignature {
                        "bad_signature"
                    } else {
                        "rejected"
                    },
                    format!("{}: {}", x.reason.code(), x.detail),
                )
            } else if s.verdict == crate::ingest::Verdict::DeviceRevoked {
                ("rejected", format!("device {} is revoked", r.device))
            } else {
                ("heartbeat", format!("device {} heartbeat kept", r.device))
            };
            Received {
                outcome,
                detail,
                settled: Some(s),
            }
        }
        Err(IngestError::NothingVerified) => {
            // Ingest answers an unknown device and a bad signature alike
            // (the sender learns neither); the log tells them apart, by
            // the device the record names.
            let named = record
                .and_then(|env| serde_json::from_slice::<Names>(&env.body).ok())
                .map(|n| ingest.storage.device(&n.device))
                .transpose()?
                .flatten();
            match named {
                Some(_) => Received::said(
                    "bad_signature",
                    "the signature is not the enrolled key's of the device it names",
                ),
                None => Received::said("unknown_device", "no enrolled device signed it"),
            }
        }
        Err(IngestError::Auth(crate::auth::AuthError::UnknownDevice(_))) => {
            Received::said("unknown_device", "no enrolled device signed it")
        }
        Err(IngestError::Auth(crate::auth::AuthError::Revoked)) => {
            Received::said("rejected", "the coordinator revoked this device")
        }
        Err(IngestError::Auth(e)) => Received::said("bad_signature", e.to_string()),
        Err(IngestError::Storage(e)) => return Err(e),
        Err(e) => Received::said("malformed", e.to_string()),
    })
}

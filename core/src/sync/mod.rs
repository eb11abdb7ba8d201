//! The phone's side of sync: enrollment and delivering the outbox.
//!
//! Only the certificate pinned at enrollment is trusted for TLS, and a
//! record becomes delivered only when a receipt signed by the pinned
//! coordinator key says so. Each batch is preceded by a signed heartbeat
//! naming the chain head. The calls block (the platforms run them on a
//! background worker); [`sync_with_retry`] adds exponential backoff with full
//! jitter. If the process dies at any point, the store's outbox states make
//! the next sync resend exactly what was not proved delivered.
//!
//! ```no_run
//! use observer_core::identity::FileKeyStore;
//! use observer_core::protocol::EnrollmentCode;
//! use observer_core::store::Store;
//! use observer_core::sync::{enroll, sync, SyncOptions};
//!
//! let keys = FileKeyStore::open_or_create("data/device.kek")?;
//! let store = Store::open("data".as_ref(), &keys)?;
//! let code = EnrollmentCode::parse("OBS1:...")?;
//! enroll(&store, &code, Some("Aigerim"))?;
//! let summary = sync(&store, &SyncOptions::default())?;
//! println!("{} delivered, {} still pending", summary.delivered(), summary.remaining);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backoff;
mod log_check;
mod relay;
mod tls;

use std::io::Read as _;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use backoff::Backoff;
pub use log_check::{LogAudit, LogProblem, PROVE_PER_SYNC, audit_log};

pub use crate::cancel::Cancel;
use crate::cancel::Cancelled;
use crate::identity::{DeviceId, PublicKey};
use crate::protocol::{
    Ack, Batch, EnrollRequest, EnrollResponse, EnrollmentCode, ErrorBody, HEARTBEAT_HEADER,
    LogProofs, RECEIPT_DOMAIN, Receipt, SealedBatch, Signed, SyncAnswer, SyncRequest,
    UPDATES_DOMAIN, Updates, WireRecord,
};
use crate::record::{RecordId, Sha256Digest};
use crate::store::{Enrollment, Refusal, SealedOutbox, Store, StoreError};

/// Largest answer the phone reads from the server.
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a sync or enrollment did not complete. Records not proved delivered
/// stay pending; nothing is lost.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Sync needs an enrollment first.
    #[error("this device is not enrolled; scan the enrollment code from your coordinator")]
    NotEnrolled,
    /// The server presented a certificate other than the pinned one:
    /// interception, or the wrong server.
    #[error(
        "the coordinator's identity could not be confirmed at {url}: the connection may be intercepted. Nothing was sent; do not retry on this network, tell your coordinator"
    )]
    IdentityNotConfirmed { url: String },
    /// No connection, a timeout, a cut: retry later.
    #[error(
        "no connection to the coordinator ({0}); records stay queued and will be sent when the link returns"
    )]
    Network(String),
    /// The server refused the request.
    #[error("the coordinator refused the request ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        /// What its `Retry-After` asked for, in seconds.
        retry_after_secs: Option<u64>,
    },
    /// The app stopped the sync ([`Cancel`]). Every record is pending or
    /// delivered: none is left half sent.
    #[error("the sync was stopped; records not yet delivered stay queued")]
    Cancelled,
    /// The coordinator revoked this device.
    #[error("the coordinator revoked this device; contact your coordinator")]
    Revoked,
    /// An answer that is not a valid receipt signed by the pinned key.
    #[error("the coordinator's answer could not be verified ({0}); nothing was marked delivered")]
    BadReceipt(String),
    /// The coordinator's signed log does not hold what it signed before:
    /// records it acknowledged were dropped or its history rewritten.
    #[error(
        "the coordinator's log was rewritten: {0}. Nothing was marked delivered; both signed log heads are kept on this phone as evidence. Tell your organisation"
    )]
    LogRewritten(LogProblem),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading stored media failed (other than a damaged copy, which is
    /// reported in the summary and skipped).
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
}

/// Whether a failed sync is worth trying again, and when: the one place
/// that decides, for the retry loop and for what the apps are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryKind {
    /// No connection, a timeout, a cut link: retry when the network is back.
    Offline,
    /// The coordinator is busy, restarting or limiting this phone: retry
    /// after a wait, at least `after` when it said so.
    Busy { after: Option<Duration> },
    /// Trying again will not help until a person acts (a refusal, an
    /// interception, a revocation), or the app stopped it.
    Never,
}

impl From<Cancelled> for SyncError {
    fn from(_: Cancelled) -> Self {
        SyncError::Cancelled
    }
}

impl SyncError {
    /// See [`RetryKind`].
    pub fn retry_kind(&self) -> RetryKind {
        match self {
            SyncError::Network(_) => RetryKind::Offline,
            SyncError::Refused {
                status,
                retry_after_secs,
                ..
            } if *status >= 500 || *status == 429 => RetryKind::Busy {
                after: retry_after_secs.map(Duration::from_secs),
            },
            _ => RetryKind::Never,
        }
    }

    /// A short, stable name for logs (no server sentence, no URL).
    fn log_code(&self) -> &str {
        match self {
            SyncError::NotEnrolled => "not_enrolled",
            SyncError::IdentityNotConfirmed { .. } => "identity_not_confirmed",
            SyncError::Network(_) => "network",
            SyncError::Refused { code, .. } => code,
            SyncError::Cancelled => "cancelled",
            SyncError::Revoked => "revoked",
            SyncError::BadReceipt(_) => "bad_receipt",
            SyncError::LogRewritten(_) => "log_rewritten",
            SyncError::Store(_) => "store",
            SyncError::Media(_) => "media",
        }
    }
}

/// Called after each batch with the running summary, so an app can show
/// progress ("120 of 400 sent").
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(&SyncSummary) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// Bounds on one sync, and who to tell about its progress.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Most records per batch.
    pub batch_records: u32,
    /// Most body bytes per batch (at least one record is always sent).
    pub batch_bytes: usize,
    /// Timeout for each request.
    pub timeout: Duration,
    /// Told after each batch.
    pub progress: Option<Progress>,
    /// Stops the sync from another thread.
    pub cancel: Cancel,
    /// The connection kept from one sync to the next: give every sync of a
    /// long-lived app the same one (clones share it).
    pub link: Link,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            batch_records: 200,
            batch_bytes: 1024 * 1024,
            timeout: Duration::from_secs(30),
            progress: None,
            cancel: Cancel::default(),
            link: Link::default(),
        }
    }
}

/// The connection to the coordinator, kept open from one sync to the next
/// by an app that stays running: a sync then reuses the open connection
/// (HTTP keep-alive) or, once the server closed it, resumes the TLS
/// session from a ticket instead of a full handshake. Clones share one
/// connection. The pin is checked on every answer, resumed or not: a
/// resumed session carries the certificate checked when it began, and a
/// server without the session's ticket key (another server, an
/// interceptor) can only offer a full handshake, which the pin refuses.
#[derive(Clone, Default)]
pub struct Link(std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<Connection>>>>);

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Link(..)")
    }
}

impl Link {
    /// The connection to `url` under `pin`, opened if this link holds none
    /// (or one to another server, pin or timeout).
    fn connection(
        &self,
        url: &str,
        pin: Sha256Digest,
        timeout: Duration,
    ) -> Result<std::sync::Arc<Connection>, SyncError> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = held.as_ref()
            && c.url == url.trim_end_matches('/')
            && c.pin == pin
            && c.timeout == timeout
        {
            return Ok(c.clone());
        }
        let c = std::sync::Arc::new(Connection::new(url, pin, timeout)?);
        *held = Some(c.clone());
        Ok(c)
    }
}

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    /// Records sent (including resends).
    pub sent: u64,
    /// Newly stored by the coordinator.
    pub accepted: u64,
    /// The coordinator already had them (a retry or replay).
    pub already: u64,
    /// Refused, with the coordinator's reason.
    pub rejected: Vec<Refusal>,
    /// Still pending afterwards.
    pub remaining: u64,
    /// Server time minus device time, in ms, as measured.
    pub clock_offset_ms: Option<i64>,
    /// Request/response round trips.
    pub batches: u64,
    /// Request bytes on the wire (compressed bodies).
    pub bytes_sent: u64,
    /// Form versions received from the coordinator that were new here.
    pub forms_received: u64,
    /// The stations the coordinator now assigns this observer to, when
    /// they changed at this sync.
    pub stations_assigned: Option<Vec<String>>,
    /// Media bytes sent (uploads resume, so a cut costs little).
    pub media_bytes_sent: u64,
    /// Media the coordinator now holds in full, hash checked.
    pub media_delivered: u64,
    /// Media not sent, and why (a damaged copy on this phone, say).
    pub media_failed: Vec<(Sha256Digest, String)>,
    /// Log proofs verified: that the coordinator's log extends the head
    /// this phone held, and that sampled delivered records are still in it.
    pub log_proofs_verified: u64,
    /// The size of a newer witnessed checkpoint this sync verified and
    /// kept (cosigned by every witness the coordinator names, extended by
    /// the receipt's head).
    pub witnessed_size: Option<u64>,
    /// Records carried for other phones (relay bundles) that the
    /// coordinator now holds.
    pub relayed: u64,
    /// Records carried for other phones that the coordinator refused for
    /// good (and this phone therefore dropped).
    pub relay_refused: u64,
    /// Records still carried for other phones afterwards.
    pub relay_remaining: u64,
}

impl SyncSummary {
    /// Records now proved delivered.
    pub fn delivered(&self) -> u64 {
        self.accepted + self.already
    }
}

struct Connection {
    client: Client,
    verifier: std::sync::Arc<tls::PinnedCert>,
    url: String,
    pin: Sha256Digest,
    timeout: Duration,
    /// The server answered `/v2/sync` with 404: it speaks version 1 only.
    v1_only: std::sync::atomic::AtomicBool,
}

impl Connection {
    fn new(url: &str, pin: Sha256Digest, timeout: Duration) -> Result<Self, SyncError> {
        let (config, verifier) = tls::pinned_config(pin);
        let client = Client::builder()
            .tls_backend_preconfigured(config)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tls_info(true)
            .build()
            .map_err(|e| SyncError::Network(e.to_string()))?;
        Ok(Self {
            client,
            verifier,
            url: url.trim_end_matches('/').to_string(),
            pin,
            timeout,
            v1_only: Default::default(),
        })
    }

    fn post(&self, path: &str, body: Vec<u8>, compressed: bool) -> Result<Response, SyncError> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.url))
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if compressed {
            req = req.header(CONTENT_ENCODING, "zstd");
        }
        self.send(req)
    }

    /// A GET that proves which device asks (media are answered only to
    /// the device whose records name them).
    fn get(&self, path: &str, heartbeat: &Signed) -> Result<Response, SyncError> {
        self.send(
            self.client
                .get(format!("{}{path}", self.url))
                .header(HEARTBEAT_HEADER, heartbeat.to_header()),
        )
    }

    fn put(&self, path: &str, body: Vec<u8>, heartbeat: &Signed) -> Result<Response, SyncError> {
        self.send(
            self.client
                .put(format!("{}{path}", self.url))
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(HEARTBEAT_HEADER, heartbeat.to_header())
                .body(body),
        )
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Result<Response, SyncError> {
        let not_confirmed = || SyncError::IdentityNotConfirmed {
            url: self.url.clone(),
        };
        let resp = req.send().map_err(|e| {
            if self.verifier.mismatch_seen() {
                not_confirmed()
            } else {
                SyncError::Network(error_chain(&e))
            }
        })?;
        // Every answer, on a new connection, a kept one or a resumed TLS
        // session, came over the pinned certificate, or it is not read.
        let pinned = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .is_some_and(|der| Sha256Digest::of(der) == self.pin);
        if pinned {
            Ok(resp)
        } else {
            Err(not_confirmed())
        }
    }
}

/// A rustls client configuration that trusts exactly the certificate whose
/// SHA-256 is `pin` (no root store), as the sync client uses: for tools that
/// talk to a coordinator outside a sync (benchmarks, operators' scripts).
pub fn pinned_tls_config(pin: Sha256Digest) -> rustls::ClientConfig {
    tls::pinned_config(pin).0
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// An answer: its status, its `Retry-After` (seconds), its body.
struct Answer {
    status: u16,
    retry_after_secs: Option<u64>,
    bytes: Vec<u8>,
}

/// Reads an answer, its body bounded in size.
fn read_answer(resp: Response) -> Result<Answer, SyncError> {
    let status = resp.status().as_u16();
    let retry_after_secs = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        // A day at most: a hostile or broken answer must not park the phone.
        .map(|s| s.min(86_400));
    let mut bytes = Vec::new();
    resp.take(MAX_RESPONSE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| SyncError::Network(e.to_string()))?;
    if bytes.len() as u64 > MAX_RESPONSE_BYTES {
        return Err(SyncError::BadReceipt("the answer is too large".into()));
    }
    Ok(Answer {
        status,
        retry_after_secs,
        bytes,
    })
}

/// The typed body of a 200; a [`SyncError`] otherwise. An unexpected 200
/// that is not our JSON (a captive portal) is refused, never trusted.
fn decode<T: DeserializeOwned>(a: &Answer) -> Result<T, SyncError> {
    if a.status == 200 {
        return serde_json::from_slice(&a.bytes)
            .map_err(|e| SyncError::BadReceipt(format!("unexpected answer: {e}")));
    }
    let refused = |code: String, message: String| SyncError::Refused {
        status: a.status,
        code,
        message,
        retry_after_secs: a.retry_after_secs,
    };
    match serde_json::from_slice::<ErrorBody>(&a.bytes) {
        Ok(e) if e.error == "device_revoked" => Err(SyncError::Revoked),
        Ok(e) => Err(refused(e.error, e.message)),
        Err(_) => Err(refused(
            "http".into(),
            String::from_utf8_lossy(&a.bytes)
                .chars()
                .take(200)
                .collect(),
        )),
    }
}

fn answer<T: DeserializeOwned>(resp: Response) -> Result<T, SyncError> {
    decode(&read_answer(resp)?)
}

/// The answer to a batch: `{"receipt": ...}` with 200; with 422 and the
/// error `records_rejected` when every record was refused (the receipt then
/// says why, and the phone stores the reasons instead of resending forever);
/// or with 403 `device_revoked` (true), saying which records were kept and
/// which quarantined.
fn receipt_answer(resp: Response) -> Result<Answered, SyncError> {
    #[derive(serde::Deserialize)]
    struct WithReceipt {
        receipt: Signed,
        #[serde(default)]
        log: Option<LogProofs>,
    }
    let a = read_answer(resp)?;
    if (a.status == 422 || a.status == 403)
        && let Ok(w) = serde_json::from_slice::<WithReceipt>(&a.bytes)
    {
        return Ok(Answered {
            receipt: w.receipt,
            revoked: a.status == 403,
            // A revoked device's earlier records are stored and
            // delivered by this receipt; a 422 stored nothing.
            stored: a.status == 403,
            updates: None,
            log: w.log,
        });
    }
    decode::<SyncAnswer>(&a).map(|w| Answered {
        receipt: w.receipt,
        revoked: false,
        stored: true,
        updates: w.updates,
        log: w.log,
    })
}

/// A batch's answer.
struct Answered {
    /// The signed receipt.
    receipt: Signed,
    /// 403: the device is revoked.
    revoked: bool,
    /// 200, or 403 (a revoked device's records from before its
    /// revocation are stored): the receipt delivers records, so its
    /// proofs are checked. A 422 stored nothing and carries none.
    stored: bool,
    /// Protocol version 2's updates.
    updates: Option<Signed>,
    /// Protocol version 2's log proofs.
    log: Option<LogProofs>,
}

/// Enrolls this device with the coordinator named in `code`: proves
/// possession of the device key, then stores the enrollment (server, pinned
/// certificate, coordinator key, org, stations).
pub fn enroll(
    store: &Store,
    code: &EnrollmentCode,
    name: Option<&str>,
) -> Result<Enrollment, SyncError> {
    let key = store.signing_key();
    let request = EnrollRequest {
        token: code.token.clone(),
        public_key: key.public_key(),
        name: name.map(str::to_string),
        proof: key
            .sign(&EnrollRequest::proof_message(&code.token))
            .to_vec(),
    };
    let conn = Connection::new(&code.url, code.tls_sha256, SyncOptions::default().timeout)?;
    let body = serde_json::to_vec(&request).expect("serialises");
    let sent_at = Instant::now();
    let local_sent = now_ms();
    let resp: EnrollResponse = answer(conn.post("/v1/enroll", body, false)?)?;
    let rtt = sent_at.elapsed().as_millis() as i64;
    if resp.device != *store.device_id() || resp.org != code.org {
        return Err(SyncError::BadReceipt(
            "the server enrolled another device or organisation".into(),
        ));
    }
    let enrollment = Enrollment {
        url: code.url.clone(),
        tls_sha256: code.tls_sha256,
        coordinator: code.coordinator,
        org: code.org.clone(),
        device: resp.device,
        stations: resp.stations,
        priority_stations: Vec::new(),
        seal_key: resp.seal_key,
        witnesses: Vec::new(),
        // The server's answer is newer than the code; the signed updates
        // of each sync keep it current.
        sms_number: resp
            .sms_number
            .filter(|n| crate::sms::is_gateway_number(n))
            .or_else(|| code.sms.clone()),
    };
    store.set_enrollment(&enrollment)?;
    // Records signed before the first receipt still carry the server's
    // time; no signed tree head brackets them yet.
    store.set_clock(resp.server_time_ms - (local_sent + rtt / 2), None)?;
    tracing::info!(
        stations = enrollment.stations.len(),
        "enrolled with the coordinator"
    );
    Ok(enrollment)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Delivers the outbox: batches of pending records, each preceded by a
/// signed heartbeat, until nothing is pending. Always makes at least one
/// contact (the heartbeat alone when nothing is pending).
pub fn sync(store: &Store, opts: &SyncOptions) -> Result<SyncSummary, SyncError> {
    let enrollment = store.enrollment().ok_or(SyncError::NotEnrolled)?;
    let conn = opts
        .link
        .connection(&enrollment.url, enrollment.tls_sha256, opts.timeout)?;
    let mut summary = SyncSummary::default();
    let mut updates_applied = false;
    loop {
        opts.cancel.check()?;
        let batch = store.take_for_delivery(opts.batch_records, opts.batch_bytes)?;
        if batch.is_empty() && summary.batches > 0 {
            break;
        }
        let ids: Vec<RecordId> = batch.iter().map(|r| r.id).collect();
        let log = log_check::LogAsk::sampled(store, &enrollment.coordinator)?;
        let result = send_batch(store, &conn, &enrollment, &batch, &mut summary, log);
        // Whatever the receipt did not settle goes back to pending: only a
        // verified receipt proves delivery.
        store.return_to_pending(&ids)?;
        if let Err(SyncError::Revoked) = result {
            // Stop signing: nothing this key signs from now on would count.
            store.mark_revoked()?;
        }
        updates_applied |= result?;
        if let Some(p) = &opts.progress {
            (p.0)(&summary);
        }
        if batch.is_empty() {
            break;
        }
    }
    // Updates before media: a new form or station matters more to the
    // observer than a video, and must not wait behind one. A server of
    // protocol version 2 answered them with the records already.
    opts.cancel.check()?;
    if !updates_applied {
        fetch_updates(store, &conn, &enrollment, &mut summary)?;
    }
    // Other phones' records before this phone's media: a report someone
    // could not send matters more than a video.
    relay::deliver_relayed(store, &conn, &enrollment, opts, &mut summary)?;
    upload_media(store, &conn, opts, &mut summary)?;
    summary.remaining = store.counts()?.pending;
    tracing::info!(
        sent = summary.sent,
        accepted = summary.accepted,
        already = summary.already,
        rejected = summary.rejected.len(),
        remaining = summary.remaining,
        batches = summary.batches,
        media_delivered = summary.media_delivered,
        "sync finished"
    );
    Ok(summary)
}

/// Media bytes per upload request: large enough that request overhead is
/// small, small enough to hold in memory. The server appends as bytes
/// arrive, so a cut loses nothing that reached it.
const UPLOAD_PIECE: usize = 4 * 1024 * 1024;

/// What the server holds of one media file.
#[derive(serde::Deserialize)]
struct MediaState {
    received: u64,
    complete: bool,
}

/// Uploads media after the records (the server takes only media that a
/// record of this device that it holds references), smallest first, each
/// from the byte where the server stopped. A file the server refuses, or a
/// damaged copy on this phone, is reported in the summary and the others
/// go on; a transfer cut by the network fails the sync (it resumes at the
/// next one).
fn upload_media(
    store: &Store,
    conn: &Connection,
    opts: &SyncOptions,
    summary: &mut SyncSummary,
) -> Result<(), SyncError> {
    for m in store.media()?.into_iter().filter(|m| !m.delivered) {
        opts.cancel.check()?;
        match upload_one(store, conn, opts, summary, &m.sha256) {
            Ok(true) => {
                store.mark_media_delivered(&m.sha256)?;
                summary.media_delivered += 1;
                tracing::info!(bytes = m.bytes, "media file delivered, its hash checked");
            }
            Ok(false) => {}
            Err(SyncError::Media(e @ crate::media::MediaError::Corrupt { .. })) => {
                tracing::warn!("a media file's copy on this phone is damaged; skipped");
                summary.media_failed.push((m.sha256, e.to_string()));
            }
            // One file's refusal (its bytes did not hash right, the server
            // holds another size for it) must not hold back the others.
            Err(SyncError::Refused {
                status,
                code,
                message,
                ..
            }) if (400..500).contains(&status) && status != 429 => {
                tracing::warn!(status, code, "the coordinator refused a media file");
                summary.media_failed.push((m.sha256, message));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Uploads one media file; true once the server holds all of it, false if
/// no record of this device that the server holds names it yet.
fn upload_one(
    store: &Store,
    conn: &Connection,
    opts: &SyncOptions,
    summary: &mut SyncSummary,
    sha256: &Sha256Digest,
) -> Result<bool, SyncError> {
    let path = format!("/v1/media/{sha256}");
    let proof = heartbeat(store)?;
    let mut state: MediaState = match answer(conn.get(&path, &proof)?) {
        Err(SyncError::Refused { status: 404, .. }) => return Ok(false),
        other => other?,
    };
    let mut reader = store.media_reader(sha256)?;
    reader.seek(state.received)?;
    let mut moved = 0;
    while !state.complete {
        opts.cancel.check()?;
        let mut piece = Vec::with_capacity(UPLOAD_PIECE);
        if reader.read_into(&mut piece, UPLOAD_PIECE)? == 0 {
            break;
        }
        let n = piece.len() as u64;
        match answer(conn.put(&format!("{path}?offset={}", state.received), piece, &proof)?) {
            Ok(s) => state = s,
            // The server was still appending what reached it over a
            // connection that was cut when it answered our GET: it holds
            // more than it said. Ask again and go on from there.
            Err(SyncError::Refused { status: 409, .. }) if moved < 8 => {
                moved += 1;
                state = answer(conn.get(&path, &proof)?)?;
                reader.seek(state.received)?;
                continue;
            }
            Err(e) => return Err(e),
        }
        summary.media_bytes_sent += n;
        if let Some(p) = &opts.progress {
            (p.0)(summary);
        }
    }
    Ok(state.complete)
}

/// A request body as JSON, zstd-compressed (batches are about 4x smaller).
fn compressed_json(body: &impl Serialize) -> Result<Vec<u8>, SyncError> {
    let json = serde_json::to_vec(body).expect("serialises");
    zstd::encode_all(json.as_slice(), 3)
        .map_err(|e| SyncError::Network(format!("compression failed: {e}")))
}

/// A request body as JSON, compressed when it is large enough to gain
/// (see [`COMPRESS_FROM_BYTES`]); true when compressed.
fn request_body(body: &impl Serialize) -> Result<(Vec<u8>, bool), SyncError> {
    let json = serde_json::to_vec(body).expect("serialises");
    if json.len() < COMPRESS_FROM_BYTES {
        return Ok((json, false));
    }
    zstd::encode_all(json.as_slice(), 3)
        .map(|z| (z, true))
        .map_err(|e| SyncError::Network(format!("compression failed: {e}")))
}

fn count_sent(summary: &mut SyncSummary, records: usize, bytes: usize) {
    summary.bytes_sent += bytes as u64;
    summary.sent += records as u64;
    summary.batches += 1;
}

/// Adds the receipt's acknowledgements of records this batch sent.
fn count_acks(summary: &mut SyncSummary, receipt: &Receipt, ours: impl Fn(&Ack) -> bool) {
    summary.accepted += receipt.accepted.iter().filter(|a| ours(a)).count() as u64;
    summary.already += receipt.already.iter().filter(|a| ours(a)).count() as u64;
}

/// Opens a receipt with the pinned coordinator key, and checks that it
/// speaks of this device and organisation: nothing is marked delivered on a
/// receipt that does not.
fn open_receipt(
    signed: &Signed,
    coordinator: &PublicKey,
    device: &DeviceId,
    org: &str,
) -> Result<Receipt, SyncError> {
    let receipt: Receipt = signed
        .open("receipt", RECEIPT_DOMAIN, coordinator)
        .map_err(|e| SyncError::BadReceipt(e.to_string()))?;
    if receipt.device != *device || receipt.org != org {
        return Err(SyncError::BadReceipt(
            "the receipt is for another device or organisation".into(),
        ));
    }
    Ok(receipt)
}

fn heartbeat(store: &Store) -> Result<Signed, SyncError> {
    Ok(store.signed_heartbeat()?)
}

/// Pulls the coordinator's updates from a server of protocol version 1
/// (`/v1/updates`), and applies them.
fn fetch_updates(
    store: &Store,
    conn: &Connection,
    enrollment: &Enrollment,
    summary: &mut SyncSummary,
) -> Result<(), SyncError> {
    #[derive(serde::Deserialize)]
    struct WithUpdates {
        updates: Signed,
    }
    let body = serde_json::to_vec(&serde_json::json!({ "heartbeat": heartbeat(store)? }))
        .expect("serialises");
    let signed = match answer::<WithUpdates>(conn.post("/v1/updates", body, false)?) {
        Err(SyncError::Revoked) => {
            store.mark_revoked()?;
            return Err(SyncError::Revoked);
        }
        other => other?.updates,
    };
    apply_updates(store, enrollment, &signed, summary)
}

/// Applies the coordinator's updates (signed with the pinned key): station
/// assignments, and form versions to keep offline. A definition this
/// Observer cannot read (a newer format) is skipped, not fatal: the records
/// still sync. Counts the new form versions and a changed assignment in
/// `summary`, and keeps the updates' tag once all of them are applied.
fn apply_updates(
    store: &Store,
    enrollment: &Enrollment,
    signed: &Signed,
    summary: &mut SyncSummary,
) -> Result<(), SyncError> {
    let updates: Updates = signed
        .open("updates", UPDATES_DOMAIN, &enrollment.coordinator)
        .map_err(|e| SyncError::BadReceipt(e.to_string()))?;
    if updates.org != enrollment.org || updates.device != *store.device_id() {
        return Err(SyncError::BadReceipt(
            "the updates are for another device or organisation".into(),
        ));
    }
    // The stations as stored now (an earlier batch of this sync may have
    // changed them).
    let current = store.enrollment().unwrap_or_else(|| enrollment.clone());
    if updates.stations != current.stations
        || updates.priority_stations != current.priority_stations
        || updates.witnesses != current.witnesses
        || updates.sms_number != current.sms_number
    {
        if updates.stations != current.stations {
            summary.stations_assigned = Some(updates.stations.clone());
        }
        store.set_enrollment(&Enrollment {
            stations: updates.stations,
            priority_stations: updates.priority_stations,
            witnesses: updates.witnesses,
            sms_number: updates.sms_number,
            ..current
        })?;
    }
    let mut skipped = false;
    for def in updates.forms {
        match store.add_forms(std::slice::from_ref(&def)) {
            Ok(n) => summary.forms_received += n as u64,
            Err(StoreError::Form(_)) => {
                skipped = true;
                tracing::warn!(
                    "a form from the coordinator is in a format this version cannot read; skipped"
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    // A skipped form is asked for again at each sync, in case this
    // Observer is updated to read it.
    if let (Some(tag), false) = (updates.tag, skipped) {
        store.set_updates_tag(tag)?;
    }
    tracing::debug!(
        forms_received = summary.forms_received,
        stations_changed = summary.stations_assigned.is_some(),
        "coordinator updates applied"
    );
    Ok(())
}

/// Below this many bytes a request body is sent as it is: compressing a
/// sync of one or two records saves a few hundred bytes and costs both
/// sides a compression context.
const COMPRESS_FROM_BYTES: usize = 4 * 1024;

/// Sends one batch (or the heartbeat alone) and settles it by its verified
/// receipt, holding the coordinator to its log with `log` first.
fn send_batch(
    store: &Store,
    conn: &Connection,
    enrollment: &Enrollment,
    batch: &[crate::store::StoredRecord],
    summary: &mut SyncSummary,
    log: log_check::LogAsk,
) -> Result<bool, SyncError> {
    use std::sync::atomic::Ordering;
    let (sealed, plain): (Vec<_>, Vec<_>) = batch.iter().partition(|r| r.for_org.is_some());
    let body = Batch {
        heartbeat: heartbeat(store)?,
        records: plain
            .iter()
            .map(|r| WireRecord::from(&r.envelope))
            .collect(),
        sealed: sealed.iter().filter_map(|r| r.for_org.clone()).collect(),
    };
    let sent_at = Instant::now();
    let local_sent = now_ms();
    let mut answer = None;
    if !conn.v1_only.load(Ordering::Relaxed) {
        let (bytes, compressed) = request_body(&SyncRequest {
            heartbeat: body.heartbeat.clone(),
            records: body.records.clone(),
            sealed: body.sealed.clone(),
            // A phone that never applied updates holds none: any tag differs.
            updates_have: store.updates_tag().unwrap_or(Sha256Digest::of(b"")),
            log_have: log.have(),
            log_prove: log.prove(),
            log_witnessed: log.witnessed_have(),
        })?;
        let len = bytes.len();
        match receipt_answer(conn.post("/v2/sync", bytes, compressed)?) {
            // A server of protocol version 2 that proved its log once
            // cannot stop: answering as version 1 would escape the proofs.
            Err(SyncError::Refused { status: 404, .. }) if log.have().is_some() => {
                return Err(SyncError::LogRewritten(LogProblem::Unproved(
                    "its log any more: it answers as a server of protocol version 1".into(),
                )));
            }
            // A server of protocol version 1: records and updates apart.
            Err(SyncError::Refused { status: 404, .. }) => {
                conn.v1_only.store(true, Ordering::Relaxed);
            }
            other => {
                count_sent(summary, batch.len(), len);
                answer = Some(other?);
            }
        }
    }
    let answered = match answer {
        Some(a) => a,
        None => {
            let (bytes, compressed) = request_body(&body)?;
            count_sent(summary, batch.len(), bytes.len());
            receipt_answer(conn.post("/v1/records", bytes, compressed)?)?
        }
    };
    let Answered {
        receipt: signed,
        revoked,
        stored,
        updates,
        log: proofs,
    } = answered;
    let rtt = sent_at.elapsed().as_millis() as i64;
    let receipt = open_receipt(
        &signed,
        &enrollment.coordinator,
        store.device_id(),
        &enrollment.org,
    )?;
    // Held to its log before anything is marked delivered: a version 2
    // answer that stored the batch carries the proofs asked for.
    let v2 = !conn.v1_only.load(Ordering::Relaxed);
    let mut witnessed = None;
    if v2 && stored {
        match log.check(&receipt, proofs.as_ref()) {
            Ok(checked) => {
                summary.log_proofs_verified += checked.verified;
                witnessed = checked.witnessed;
            }
            Err(problem) => {
                store.add_log_fault(log.fault(&signed, proofs, &problem))?;
                tracing::error!(
                    problem = problem.kind(),
                    "the coordinator's log failed its proofs; evidence kept"
                );
                return Err(SyncError::LogRewritten(problem));
            }
        }
    }
    let ours: std::collections::HashSet<RecordId> = batch.iter().map(|r| r.id).collect();
    let delivered: Vec<RecordId> = receipt
        .accepted
        .iter()
        .chain(&receipt.already)
        .map(|a| a.id)
        .filter(|id| ours.contains(id))
        .collect();
    let rejected: Vec<Refusal> = receipt
        .rejected
        .iter()
        .filter(|r| ours.contains(&r.id))
        .map(|r| Refusal {
            id: r.id,
            reason: r.reason,
            detail: r.detail.clone(),
        })
        .collect();
    let receipt_json = serde_json::to_vec(&signed).expect("serialises");
    store.apply_receipt(&receipt_json, &delivered, &rejected)?;
    if v2 && stored {
        store.set_log_anchor(&signed)?;
        if let Some((size, checkpoint)) = witnessed {
            store.set_log_witnessed(&checkpoint)?;
            summary.witnessed_size = Some(size);
        }
    }
    count_acks(summary, &receipt, |a| ours.contains(&a.id));
    tracing::debug!(
        records = batch.len(),
        bytes = summary.bytes_sent,
        delivered = delivered.len(),
        rejected = rejected.len(),
        rtt_ms = rtt,
        "batch settled by a verified receipt"
    );
    summary.rejected.extend(rejected);
    // The server stamped its time somewhere within the round trip; assume
    // the middle.
    let offset = receipt.server_time_ms - (local_sent + rtt / 2);
    store.set_clock(offset, Some(Sha256Digest::of(&signed.body)))?;
    summary.clock_offset_ms = Some(offset);
    if revoked {
        return Err(SyncError::Revoked);
    }
    match updates {
        Some(u) => {
            apply_updates(store, enrollment, &u, summary)?;
            Ok(true)
        }
        // Version 2 says nothing when nothing changed.
        None => Ok(!conn.v1_only.load(Ordering::Relaxed)),
    }
}

/// Delivers what a panic wipe kept (see [`crate::store::SealedOutbox`]) to
/// the coordinator it was enrolled with, in batches, dropping each record
/// once a verified receipt settles it. Returns `Ok` with nothing sent if the
/// directory was not wiped or kept nothing.
pub fn deliver_sealed(dir: &std::path::Path, opts: &SyncOptions) -> Result<SyncSummary, SyncError> {
    let mut summary = SyncSummary::default();
    let Some(outbox) = SealedOutbox::open(dir)? else {
        return Ok(summary);
    };
    let Some(target) = outbox.target().cloned() else {
        return Ok(summary);
    };
    let conn = opts
        .link
        .connection(&target.url, target.tls_sha256, opts.timeout)?;
    let pending = outbox.pending()?;
    for chunk in pending.chunks(opts.batch_records.max(1) as usize) {
        let compressed = compressed_json(&SealedBatch {
            sealed: chunk.to_vec(),
        })?;
        count_sent(&mut summary, chunk.len(), compressed.len());
        let Answered {
            receipt: signed,
            revoked,
            ..
        } = receipt_answer(conn.post("/v1/sealed", compressed, true)?)?;
        let receipt = open_receipt(&signed, &target.coordinator, &target.device, &target.org)?;
        let ours: std::collections::HashSet<u64> = chunk.iter().map(|s| s.seq).collect();
        let mut settled: Vec<u64> = receipt
            .accepted
            .iter()
            .chain(&receipt.already)
            .map(|a| a.seq)
            .filter(|s| ours.contains(s))
            .collect();
        count_acks(&mut summary, &receipt, |a| ours.contains(&a.seq));
        for r in &receipt.rejected {
            if let Some(s) = chunk.get(r.position) {
                settled.push(s.seq);
                summary.rejected.push(Refusal {
                    id: r.id,
                    reason: r.reason,
                    detail: r.detail.clone(),
                });
            }
        }
        outbox.settle(&settled)?;
        if revoked {
            return Err(SyncError::Revoked);
        }
    }
    summary.remaining = outbox.pending()?.len() as u64;
    Ok(summary)
}

/// [`sync`], retried with [`Backoff`] while the failure is retryable, at most
/// `attempts` times in all. Returns the last error when all fail.
pub fn sync_with_retry(
    store: &Store,
    opts: &SyncOptions,
    backoff: &Backoff,
    attempts: u32,
) -> Result<SyncSummary, SyncError> {
    let mut attempt = 0;
    loop {
        let e = match sync(store, opts) {
            Err(e) if attempt + 1 < attempts => e,
            other => return other,
        };
        let delay = match e.retry_kind() {
            RetryKind::Never => return Err(e),
            RetryKind::Offline => backoff.delay(attempt),
            // Never sooner than the server asked, and spread over as long
            // again, so that the phones it turned away together do not all
            // come back in the same second.
            RetryKind::Busy { after: Some(after) } => after + backoff.delay(attempt).min(after),
            RetryKind::Busy { after: None } => backoff.delay(attempt),
        };
        tracing::warn!(
            attempt = attempt + 1,
            error = e.log_code(),
            retry_in_ms = delay.as_millis() as u64,
            "sync failed; retrying"
        );
        opts.cancel.sleep(delay)?;
        attempt += 1;
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    fn refused(status: u16, retry_after_secs: Option<u64>) -> SyncError {
        SyncError::Refused {
            status,
            code: "x".into(),
            message: "y".into(),
            retry_after_secs,
        }
    }

    #[test]
    fn one_decision_says_when_a_failure_is_worth_retrying() {
        assert_eq!(
            SyncError::Network("cut".into()).retry_kind(),
            RetryKind::Offline
        );
        assert_eq!(
            refused(429, Some(7)).retry_kind(),
            RetryKind::Busy {
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            refused(503, None).retry_kind(),
            RetryKind::Busy { after: None }
        );
        for never in [
            refused(400, None),
            refused(409, Some(1)),
            SyncError::Revoked,
            SyncError::Cancelled,
            SyncError::NotEnrolled,
            SyncError::IdentityNotConfirmed { url: "u".into() },
            SyncError::BadReceipt("b".into()),
        ] {
            assert_eq!(never.retry_kind(), RetryKind::Never, "{never}");
        }
    }
}

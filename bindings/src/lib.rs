//! `observer-ffi`: Observer's core for Kotlin (Android) and Swift (iOS).
//!
//! A thin facade: it converts between the core's types and plain records
//! that uniffi can carry, and maps every core error to one flat
//! [`ObserverError`] whose variants say what the app should tell the user.
//! All logic stays in `observer-core`.
//!
//! Calls that touch the disk or the network block the calling thread; call
//! them from a background thread (Kotlin: `Dispatchers.IO`; Swift: a `Task`
//! or background queue). The Android and iOS wrappers do this for you.
//!
//! ```
//! use std::sync::Arc;
//! use observer_ffi::{KeyStoreFailure, NewObservation, ObserverCore, PlatformKeyStore};
//!
//! // A toy key store; apps use Android Keystore or the iOS Keychain.
//! struct Xor;
//! impl PlatformKeyStore for Xor {
//!     fn wrap(&self, s: Vec<u8>) -> Result<Vec<u8>, KeyStoreFailure> { Ok(s.iter().map(|b| b ^ 0x5a).collect()) }
//!     fn unwrap(&self, w: Vec<u8>) -> Result<Vec<u8>, KeyStoreFailure> { Ok(w.iter().map(|b| b ^ 0x5a).collect()) }
//!     fn destroy_key(&self) -> Result<(), KeyStoreFailure> { Ok(()) }
//! }
//! let dir = tempfile::tempdir().unwrap();
//! let core = ObserverCore::open(dir.path().display().to_string(), Arc::new(Xor)).unwrap();
//! let saved = core.save(NewObservation {
//!     station: "KZ-ALA-0042".into(),
//!     form_id: "opening".into(),
//!     form_version: 1,
//!     kind: "checklist".into(),
//!     payload_json: r#"{"seals_intact": true}"#.into(),
//!     attachments: vec![],
//!     supersedes: None,
//! }).unwrap();
//! assert_eq!(saved.seq, 1);
//! assert_eq!(core.counts().unwrap().pending, 1);
//! ```

#[cfg(feature = "bench")]
mod bench;
mod convert;
mod error;
mod forms;
mod log;

use std::path::PathBuf;
use std::sync::Arc;

use observer_core::protocol::EnrollmentCode;
use observer_core::record::{NewRecord, RecordId};
use observer_core::store::{OnTampering, Query, Store};
use observer_core::sync::{self, Backoff, Progress, SyncOptions};

pub use convert::*;
pub use error::{KeyStoreFailure, ObserverError};
pub use forms::{AnswerProblem, FormField, FormOption, FormSummary, FormValidation, RuleProblem};
pub use log::{LogLevel, LogSink, clear_log_sink, set_log_sink};

uniffi::setup_scaffolding!();

/// Wraps and unwraps the device key with the platform's key store. Apps
/// implement it with Android Keystore or the iOS Keychain; the core stores
/// only what `wrap` returns.
#[uniffi::export(with_foreign)]
pub trait PlatformKeyStore: Send + Sync {
    /// Encrypts `secret` with a key the platform protects.
    fn wrap(&self, secret: Vec<u8>) -> Result<Vec<u8>, KeyStoreFailure>;
    /// Decrypts what `wrap` returned; fails (never returns garbage) for
    /// anything else.
    fn unwrap(&self, wrapped: Vec<u8>) -> Result<Vec<u8>, KeyStoreFailure>;
    /// Deletes the wrapping key for good (panic wipe); succeeds if it is
    /// already gone.
    fn destroy_key(&self) -> Result<(), KeyStoreFailure>;
}

/// Receives sync progress after each batch.
#[uniffi::export(with_foreign)]
pub trait SyncProgress: Send + Sync {
    /// `sent` records sent so far in this sync, `delivered` of them proved
    /// delivered by a receipt; `media_bytes` of evidence media sent so far.
    fn on_progress(&self, sent: u64, delivered: u64, media_bytes: u64);
}

/// Stops a long call (`sync`, `import_media`) from another thread.
#[derive(Debug, Default, uniffi::Object)]
pub struct CancelToken(observer_core::cancel::Cancel);

#[uniffi::export]
impl CancelToken {
    /// A token not yet cancelled.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Stops the calls given this token at their next check.
    pub fn cancel(&self) {
        self.0.cancel();
    }

    /// Whether `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// Receives import progress: `done` of `total` bytes read.
#[uniffi::export(with_foreign)]
pub trait ImportProgress: Send + Sync {
    /// Called about once a MiB read, and at the end.
    fn on_progress(&self, done: u64, total: u64);
}

/// An evidence file the phone holds.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MediaItem {
    /// SHA-256 (hex): what an observation's attachment names.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// MIME type.
    pub mime: String,
    /// Whether the coordinator holds all of it, hash checked.
    pub delivered: bool,
}

struct KeyStoreAdapter(Arc<dyn PlatformKeyStore>);

impl observer_core::identity::KeyStore for KeyStoreAdapter {
    fn wrap(&self, secret: &[u8]) -> Result<Vec<u8>, observer_core::identity::KeyStoreError> {
        self.0
            .wrap(secret.to_vec())
            .map_err(|e| observer_core::identity::KeyStoreError::Platform(e.to_string()))
    }

    fn unwrap(
        &self,
        wrapped: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, observer_core::identity::KeyStoreError> {
        self.0
            .unwrap(wrapped.to_vec())
            .map(zeroize::Zeroizing::new)
            .map_err(|e| observer_core::identity::KeyStoreError::Platform(e.to_string()))
    }

    fn destroy(&self) -> Result<(), observer_core::identity::KeyStoreError> {
        self.0
            .destroy_key()
            .map_err(|e| observer_core::identity::KeyStoreError::Platform(e.to_string()))
    }
}

/// An open Observer store: the device's identity and its outbox. Safe to
/// share between threads.
#[derive(uniffi::Object)]
pub struct ObserverCore {
    store: Store,
    /// The connection kept between syncs (keep-alive, TLS resumption).
    link: sync::Link,
    /// Kept for [`ObserverCore::wipe`], which destroys its key.
    key_store: KeyStoreAdapter,
}

#[uniffi::export]
impl ObserverCore {
    /// Opens (creating on first use) the store in the app's private
    /// directory `data_dir`, with the device key wrapped by `key_store`.
    /// Fails with [`ObserverError::Tampered`] if stored records were
    /// deleted or altered (see [`ObserverCore::open_despite_tampering`]).
    #[uniffi::constructor]
    pub fn open(
        data_dir: String,
        key_store: Arc<dyn PlatformKeyStore>,
    ) -> Result<Arc<Self>, ObserverError> {
        Self::open_with(data_dir, key_store, OnTampering::Refuse)
    }

    /// Opens the store even if tampering was found, so the observer can keep
    /// recording; the gap stays visible to the coordinator.
    #[uniffi::constructor]
    pub fn open_despite_tampering(
        data_dir: String,
        key_store: Arc<dyn PlatformKeyStore>,
    ) -> Result<Arc<Self>, ObserverError> {
        Self::open_with(data_dir, key_store, OnTampering::Continue)
    }

    /// This device's id, shown to the coordinator.
    pub fn device_id(&self) -> String {
        self.store.device_id().to_string()
    }

    /// This device's public key (base64url).
    pub fn public_key(&self) -> String {
        self.store.public_key().to_string()
    }

    /// Enrolls with the coordinator whose code was scanned (`OBS1:...`).
    pub fn enroll(
        &self,
        code: String,
        name: Option<String>,
    ) -> Result<EnrollmentInfo, ObserverError> {
        let code = EnrollmentCode::parse(&code)?;
        Ok(sync::enroll(&self.store, &code, name.as_deref())?.into())
    }

    /// The enrollment, if enrolled.
    pub fn enrollment(&self) -> Option<EnrollmentInfo> {
        self.store.enrollment().map(Into::into)
    }

    /// Signs and durably saves one observation. When this returns, the
    /// record survives a crash or power cut.
    pub fn save(&self, observation: NewObservation) -> Result<SavedObservation, ObserverError> {
        let mut b = NewRecord::builder(
            observation.station,
            observation.form_id,
            observation.form_version,
            observation.kind,
        )
        .payload_json(observation.payload_json);
        for a in observation.attachments {
            b = match a.meta {
                Some(meta) => b.attachment_with(a.sha256, a.bytes, a.mime, meta.into()),
                None => b.attachment(a.sha256, a.bytes, a.mime),
            };
        }
        if let Some(s) = observation.supersedes {
            let id: RecordId = s.parse().map_err(|e| ObserverError::InvalidInput {
                message: format!("the record to correct ({s:?}) is not a record id: {e}"),
            })?;
            b = b.supersedes(id);
        }
        Ok(self.store.save(b.build()?)?.into())
    }

    /// Records matching `query`, in chain order (page with `after_seq`).
    pub fn list(&self, query: ObservationQuery) -> Result<Vec<Observation>, ObserverError> {
        let mut q = Query::new().limit(query.limit);
        if let Some(s) = query.status.filter() {
            q = q.state(s);
        }
        if let Some(s) = query.station {
            q = q.station(s);
        }
        if let Some(k) = query.kind {
            q = q.kind(k);
        }
        if let Some(a) = query.after_seq {
            q = q.after_seq(a);
        }
        Ok(self.store.list(&q)?.into_iter().map(Into::into).collect())
    }

    /// How many records are in each delivery state.
    pub fn counts(&self) -> Result<OutboxCounts, ObserverError> {
        Ok(self.store.counts()?.into())
    }

    /// Checks every record (ids, signatures, links). Slow on large stores:
    /// about one signature verification per record.
    pub fn verify(&self) -> Result<IntegrityReport, ObserverError> {
        Ok(self.store.verify()?.into())
    }

    /// Forms available offline (shipped and published by the coordinator),
    /// every version, titles in `lang` (`kk`, `ru`, `en`); the results
    /// form is marked `priority` when one of the observer's stations is in
    /// the quick count's sample.
    pub fn list_forms(&self, lang: String) -> Result<Vec<FormSummary>, ObserverError> {
        let sampled = self
            .store
            .enrollment()
            .is_some_and(|e| !e.priority_stations.is_empty());
        Ok(self
            .store
            .forms()?
            .iter()
            .map(|f| forms::summary(f, &lang, sampled))
            .collect())
    }

    /// The questions of form `form_id` (at `version`, or its newest), with
    /// labels in `lang`.
    pub fn form_fields(
        &self,
        form_id: String,
        version: Option<u32>,
        lang: String,
    ) -> Result<Vec<FormField>, ObserverError> {
        Ok(forms::fields(&self.form(&form_id, version)?, &lang))
    }

    /// Checks answers (a JSON object) against a form: which fields to show,
    /// which answers are invalid, which rules fail. Never blocks saving.
    pub fn validate_answers(
        &self,
        form_id: String,
        version: Option<u32>,
        payload_json: String,
        lang: String,
    ) -> Result<FormValidation, ObserverError> {
        let form = self.form(&form_id, version)?;
        let answers: serde_json::Value =
            serde_json::from_str(&payload_json).map_err(|e| ObserverError::InvalidInput {
                message: format!("the answers are not valid JSON: {e}"),
            })?;
        let answers = answers
            .as_object()
            .ok_or_else(|| ObserverError::InvalidInput {
                message: "the answers must be a JSON object".into(),
            })?;
        Ok(form.validate(answers, &lang).into())
    }

    /// Delivers pending records to the coordinator, retrying network
    /// failures a few times with backoff; `progress` hears after each batch.
    /// Records not proved delivered stay pending; call again later.
    /// `cancel` stops it from another thread before its next request (an
    /// Android worker's `onStopped`); it then fails with `Cancelled`.
    pub fn sync(
        &self,
        progress: Option<Arc<dyn SyncProgress>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<SyncReport, ObserverError> {
        let opts = SyncOptions {
            cancel: cancel.map(|c| c.0.clone()).unwrap_or_default(),
            progress: progress.map(|p| {
                Progress(Arc::new(move |s: &sync::SyncSummary| {
                    p.on_progress(s.sent, s.delivered(), s.media_bytes_sent)
                }))
            }),
            link: self.link.clone(),
            ..SyncOptions::default()
        };
        Ok(sync::sync_with_retry(&self.store, &opts, &Backoff::default(), 3)?.into())
    }

    /// Proves every record this phone delivered still in the coordinator's
    /// log, and the log extending every head it signed for this phone (a
    /// dispute, or before a phone is handed back). Fails with
    /// `LogRewritten`, keeping the evidence, if the coordinator dropped or
    /// rewrote records; `cancel` stops it before its next request.
    pub fn audit_log(
        &self,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<LogAuditReport, ObserverError> {
        let opts = SyncOptions {
            cancel: cancel.map(|c| c.0.clone()).unwrap_or_default(),
            link: self.link.clone(),
            ..SyncOptions::default()
        };
        let a = sync::audit_log(&self.store, &opts)?;
        Ok(LogAuditReport {
            records_proved: a.records_proved,
            log_size: a.size,
        })
    }

    /// Imports a photo, audio or video file as evidence: streamed (never
    /// whole in memory, up to 2 GiB), hashed, stored encrypted in the app's
    /// directory, once however often it is imported. A JPEG loses its
    /// location and device tags unless `keep_photo_tags`. Attach the
    /// returned reference (with its `meta`) to an observation; the original
    /// may then be deleted.
    /// Blocking; `progress` hears as it reads; `cancel` stops it at the
    /// next chunk, storing nothing.
    pub fn import_media(
        &self,
        path: String,
        mime: String,
        keep_photo_tags: bool,
        progress: Option<Arc<dyn ImportProgress>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<AttachmentInput, ObserverError> {
        let report = progress.map(|p| move |done: u64, total: u64| p.on_progress(done, total));
        let cancel = cancel.map(|c| c.0.clone()).unwrap_or_default();
        let m = self.store.import_media_until(
            std::path::Path::new(&path),
            &mime,
            if keep_photo_tags {
                observer_core::media::PhotoTags::Keep
            } else {
                observer_core::media::PhotoTags::Remove
            },
            report.as_ref().map(|f| f as &dyn Fn(u64, u64)),
            &cancel,
        )?;
        Ok(AttachmentInput {
            sha256: m.sha256.to_string(),
            bytes: m.bytes,
            mime: m.mime,
            meta: None,
        })
    }

    /// The evidence files held, smallest first (the upload order).
    pub fn list_media(&self) -> Result<Vec<MediaItem>, ObserverError> {
        Ok(self
            .store
            .media()?
            .into_iter()
            .map(|m| MediaItem {
                sha256: m.sha256.to_string(),
                bytes: m.bytes,
                mime: m.mime,
                delivered: m.delivered,
            })
            .collect())
    }

    /// The SMS texts of record `record_id`, exactly as signed: each is one
    /// GSM 7-bit segment (160 characters) and they may arrive in any
    /// order. Send each to the coordinator's gateway number (Android:
    /// `SmsManager.sendTextMessage` per text, with sent and delivery
    /// intents; iOS: `MFMessageComposeViewController`, the observer
    /// confirming), then call [`ObserverCore::mark_sent_by_sms`]. Fails
    /// with `InvalidInput` for a record too large for SMS (send it over the
    /// internet or in a relay bundle).
    pub fn sms_parts(&self, record_id: String) -> Result<Vec<String>, ObserverError> {
        Ok(self.store.sms_parts(&record_id_of(&record_id)?)?)
    }

    /// A signed heartbeat as one SMS text: the coordinator learns how many
    /// records this phone holds, so a phone seized later cannot hide them.
    pub fn heartbeat_sms_parts(&self) -> Result<Vec<String>, ObserverError> {
        Ok(self.store.heartbeat_sms_parts()?)
    }

    /// Notes that record `record_id` was sent by SMS now: show "sent by
    /// SMS, receipt awaited". It stays pending until a receipt proves it
    /// arrived (the next sync sends it again and hears `already`).
    pub fn mark_sent_by_sms(&self, record_id: String) -> Result<(), ObserverError> {
        Ok(self.store.mark_sent_by_sms(&record_id_of(&record_id)?)?)
    }

    /// Takes the coordinator's receipt that its gateway texted back (the
    /// texts of one message from the gateway number, in any order): it is
    /// rebuilt, verified with the pinned coordinator key, and the records
    /// it names are delivered, as at a sync. Android: pass the bodies of
    /// an incoming SMS from the gateway number that start with `O1`; a
    /// message still missing parts fails with `InvalidInput` (keep its
    /// texts and pass them again with the rest). A text anyone else made
    /// fails with `InvalidInput` and changes nothing.
    pub fn accept_sms_receipt(&self, texts: Vec<String>) -> Result<SmsReceiptInfo, ObserverError> {
        Ok(self.store.accept_sms_receipt(&texts)?.into())
    }

    /// When record `record_id` was last sent by SMS (ms since the epoch).
    pub fn sent_by_sms_at_ms(&self, record_id: String) -> Result<Option<i64>, ObserverError> {
        Ok(self
            .store
            .sent_by_sms_at(&record_id_of(&record_id)?)?
            .map(|t| t.timestamp_millis()))
    }

    /// Writes this phone's undelivered records (oldest first, at most
    /// `max_bytes`, at most 16 MiB) as a relay bundle: each record sealed
    /// to the organisation, the whole signed with the device key. Another
    /// phone of the organisation imports it ([`ObserverCore::import_relay_bundle`])
    /// and delivers the records at its next sync; they stay pending here
    /// until this phone's own sync hears they were delivered. Save the
    /// bytes to a file and offer the share sheet, Nearby Share, Bluetooth
    /// or a USB stick.
    pub fn export_relay_bundle(&self, max_bytes: u64) -> Result<RelayExport, ObserverError> {
        let e = self
            .store
            .export_relay_bundle(usize::try_from(max_bytes).unwrap_or(usize::MAX))?;
        Ok(RelayExport {
            bundle: e.bytes,
            records: e.records,
            left_out: e.left_out,
        })
    }

    /// Takes another phone's relay bundle into this phone's relay outbox,
    /// which never mixes with its own records and which this phone cannot
    /// read. A damaged, truncated or foreign bundle is refused
    /// (`InvalidInput`, with a sentence naming the problem) and changes
    /// nothing. Importing the same bundle twice adds nothing.
    pub fn import_relay_bundle(&self, bundle: Vec<u8>) -> Result<RelayImport, ObserverError> {
        let i = self.store.import_relay_bundle(&bundle)?;
        Ok(RelayImport {
            device: i.device.to_string(),
            records: i.records,
            added: i.added,
        })
    }

    /// Records this phone carries for others, not yet delivered.
    pub fn relay_count(&self) -> Result<u64, ObserverError> {
        Ok(self.store.relay_count()?)
    }

    /// Panic wipe: destroys the keys (through the platform key store) and
    /// every readable record, at once. With `keep_sealed`, undelivered
    /// records of the forms the organisation seals are kept, unreadable
    /// here, for [`deliver_sealed_outbox`]. Afterwards every call on this
    /// object, and opening the directory again, fails with
    /// `ObserverError::Wiped`.
    pub fn wipe(&self, keep_sealed: bool) -> Result<WipeReport, ObserverError> {
        let s = self.store.wipe(&self.key_store, keep_sealed)?;
        Ok(WipeReport {
            wiped_at_ms: s.wiped_at_ms,
            sealed_waiting: s.sealed_waiting,
        })
    }
}

/// What a panic wipe did.
#[derive(Debug, uniffi::Record)]
pub struct WipeReport {
    /// When (ms since the Unix epoch).
    pub wiped_at_ms: i64,
    /// Sealed records kept for delivery.
    pub sealed_waiting: u64,
}

/// A relay bundle written by [`ObserverCore::export_relay_bundle`].
#[derive(Debug, uniffi::Record)]
pub struct RelayExport {
    /// The file's bytes.
    pub bundle: Vec<u8>,
    /// Records in it.
    pub records: u64,
    /// Undelivered records that did not fit (export again later).
    pub left_out: u64,
}

/// What [`ObserverCore::import_relay_bundle`] took.
#[derive(Debug, uniffi::Record)]
pub struct RelayImport {
    /// The phone that wrote the bundle.
    pub device: String,
    /// Records in the bundle.
    pub records: u64,
    /// Of them, new to this phone's relay outbox.
    pub added: u64,
}

/// What a relay bundle says of itself, once its signature is verified.
#[derive(Debug, uniffi::Record)]
pub struct RelayBundleInfo {
    /// The phone that wrote it.
    pub device: String,
    /// The organisation sealing key its records are sealed to (hex).
    pub org_key: String,
    /// The seqs of its records, ascending.
    pub seqs: Vec<u64>,
}

/// Reads a relay bundle without a store: checks its layout and the
/// sending device's signature (the shared test vectors, or showing what a
/// file is before importing it).
#[uniffi::export]
pub fn read_relay_bundle(bundle: Vec<u8>) -> Result<RelayBundleInfo, ObserverError> {
    let b = observer_core::relay::RelayBundle::read(&bundle).map_err(|e| {
        ObserverError::InvalidInput {
            message: e.to_string(),
        }
    })?;
    Ok(RelayBundleInfo {
        device: b.device().to_string(),
        org_key: hex::encode(b.org().as_bytes()),
        seqs: b.records().iter().map(|r| r.seq).collect(),
    })
}

/// Delivers the sealed records a wipe kept in `data_dir` to the
/// coordinator the phone was enrolled with (no key needed: they prove
/// themselves once the coordinator opens them). Blocking; call off the
/// main thread.
#[uniffi::export]
pub fn deliver_sealed_outbox(data_dir: String) -> Result<SyncReport, ObserverError> {
    Ok(sync::deliver_sealed(&PathBuf::from(data_dir), &SyncOptions::default())?.into())
}

/// Clears a wiped `data_dir` so the app can start again with a new
/// identity. Refuses while sealed records wait, unless `discard_sealed`.
#[uniffi::export]
pub fn start_over(data_dir: String, discard_sealed: bool) -> Result<(), ObserverError> {
    Ok(Store::start_over(&PathBuf::from(data_dir), discard_sealed)?)
}

impl ObserverCore {
    fn form(
        &self,
        id: &str,
        version: Option<u32>,
    ) -> Result<observer_core::forms::FormDefinition, ObserverError> {
        self.store
            .form(id, version)?
            .ok_or_else(|| ObserverError::InvalidInput {
                message: format!(
                    "no form {id:?} on this device; sync to receive the coordinator's forms"
                ),
            })
    }

    fn open_with(
        data_dir: String,
        key_store: Arc<dyn PlatformKeyStore>,
        on_tampering: OnTampering,
    ) -> Result<Arc<Self>, ObserverError> {
        let key_store = KeyStoreAdapter(key_store);
        let store = Store::open_with(&PathBuf::from(data_dir), &key_store, on_tampering)?;
        Ok(Arc::new(Self {
            store,
            key_store,
            link: sync::Link::default(),
        }))
    }
}

/// A record id from its text form.
fn record_id_of(text: &str) -> Result<RecordId, ObserverError> {
    text.parse().map_err(|e| ObserverError::InvalidInput {
        message: format!("{text:?} is not a record id: {e}"),
    })
}

/// A signed record from its body and signature bytes.
fn envelope(
    body: Vec<u8>,
    signature: Vec<u8>,
) -> Result<observer_core::record::Envelope, ObserverError> {
    let sig: [u8; 64] = signature
        .try_into()
        .map_err(|_| ObserverError::InvalidInput {
            message: "a signature is 64 bytes".into(),
        })?;
    Ok(observer_core::record::Envelope { body, sig })
}

/// The SMS texts of a signed record given as bytes (`body`, `signature`),
/// for organisation `org`, answers packed by the shipped forms: the same
/// texts every implementation must produce (the shared test vectors).
#[uniffi::export]
pub fn sms_parts_for_record(
    body: Vec<u8>,
    signature: Vec<u8>,
    org: Option<String>,
) -> Result<Vec<String>, ObserverError> {
    let env = envelope(body, signature)?;
    observer_core::sms::record_parts(
        &env,
        &observer_core::sms::Forms::shipped(org.as_deref()),
        None,
    )
    .map_err(|e| ObserverError::InvalidInput {
        message: e.to_string(),
    })
}

/// Verifies a record signature made by the device with `public_key`
/// (base64url) over `body`; returns the record id. For checking the shared
/// known-answer vectors from every language.
#[uniffi::export]
pub fn verify_record(
    public_key: String,
    body: Vec<u8>,
    signature: Vec<u8>,
) -> Result<String, ObserverError> {
    let key: observer_core::identity::PublicKey =
        public_key
            .parse()
            .map_err(
                |e: observer_core::identity::IdentityError| ObserverError::InvalidInput {
                    message: e.to_string(),
                },
            )?;
    let env = envelope(body, signature)?;
    let rec = observer_core::record::verify_envelope(&env, &key).map_err(|e| {
        ObserverError::Tampered {
            message: e.to_string(),
        }
    })?;
    Ok(rec.id.to_string())
}

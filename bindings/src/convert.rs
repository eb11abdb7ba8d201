//! Plain records for the apps, converted from the core's types.

use observer_core::store::{
    Counts, DeliveryState, Enrollment, SavedRecord, StateFilter, StoredRecord, TamperReport,
};
use observer_core::sync::SyncSummary;

/// A media reference: SHA-256 (hex), size and MIME type, and what the
/// observer declares about the file.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AttachmentInput {
    pub sha256: String,
    pub bytes: u64,
    pub mime: String,
    #[uniffi(default = None)]
    pub meta: Option<MediaMetaInput>,
}

/// Whether the people shown agreed to be recorded.
#[derive(Debug, Clone, Copy, uniffi::Enum)]
pub enum ConsentInput {
    Given,
    Refused,
    NotAsked,
    NobodyShown,
}

/// What the observer declares about a photo, audio or video: consent,
/// what can be seen, where it was taken from (the area the commission
/// chair set), a note. Signed with the observation.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MediaMetaInput {
    pub consent: ConsentInput,
    pub faces_visible: bool,
    pub ballots_visible: bool,
    pub voter_list_visible: bool,
    #[uniffi(default = None)]
    pub taken_from: Option<String>,
    #[uniffi(default = None)]
    pub note: Option<String>,
    #[uniffi(default = false)]
    pub location_kept: bool,
}

impl From<MediaMetaInput> for observer_core::record::MediaMeta {
    fn from(m: MediaMetaInput) -> Self {
        use observer_core::record::Consent;
        Self {
            consent: match m.consent {
                ConsentInput::Given => Consent::Given,
                ConsentInput::Refused => Consent::Refused,
                ConsentInput::NotAsked => Consent::NotAsked,
                ConsentInput::NobodyShown => Consent::NobodyShown,
            },
            faces_visible: m.faces_visible,
            ballots_visible: m.ballots_visible,
            voter_list_visible: m.voter_list_visible,
            taken_from: m.taken_from,
            note: m.note,
            location_kept: m.location_kept,
        }
    }
}

/// An observation to save.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewObservation {
    /// The polling station's id.
    pub station: String,
    /// The form's id.
    pub form_id: String,
    /// The form's version.
    pub form_version: u32,
    /// What sort of observation (checklist, incident, results, access).
    pub kind: String,
    /// The answers: a JSON object.
    pub payload_json: String,
    /// Media references.
    pub attachments: Vec<AttachmentInput>,
    /// The id of the record this one corrects.
    pub supersedes: Option<String>,
}

/// A saved observation.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SavedObservation {
    pub id: String,
    pub seq: u64,
    /// The signed capture time, ms since the Unix epoch (UTC).
    pub captured_at_ms: i64,
}

impl From<SavedRecord> for SavedObservation {
    fn from(s: SavedRecord) -> Self {
        Self {
            id: s.id.to_string(),
            seq: s.seq,
            captured_at_ms: s.captured_at.timestamp_millis(),
        }
    }
}

/// Where a record is on its way to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DeliveryStatus {
    Pending,
    InFlight,
    Delivered {
        received_at_ms: i64,
    },
    Rejected {
        reason: RejectionReason,
        detail: String,
    },
}

/// Why the coordinator refused a record (stable; the sentence in `detail`
/// beside it says more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RejectionReason {
    /// The signature does not verify with this device's enrolled key.
    BadSignature,
    /// Not a valid record.
    Malformed,
    /// Over the size limit.
    TooLarge,
    /// Names another device.
    WrongDevice,
    /// Signed for another organisation.
    WrongOrg,
    /// The coordinator holds another record at this position: this phone's
    /// chain forked (restored from a backup?).
    Conflict,
    /// This device was revoked before the record arrived: kept in quarantine.
    Quarantined,
    /// Sealed to the organisation but did not open.
    Unopenable,
    /// A reason this app version does not know.
    Other,
}

impl From<observer_core::protocol::RejectReason> for RejectionReason {
    fn from(r: observer_core::protocol::RejectReason) -> Self {
        use observer_core::protocol::RejectReason as R;
        match r {
            R::BadSignature => RejectionReason::BadSignature,
            R::Malformed => RejectionReason::Malformed,
            R::TooLarge => RejectionReason::TooLarge,
            R::WrongDevice => RejectionReason::WrongDevice,
            R::WrongOrg => RejectionReason::WrongOrg,
            R::Conflict => RejectionReason::Conflict,
            R::Quarantined => RejectionReason::Quarantined,
            R::Unopenable => RejectionReason::Unopenable,
            R::Other => RejectionReason::Other,
        }
    }
}

/// A stored observation.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Observation {
    pub id: String,
    pub seq: u64,
    pub station: String,
    pub kind: String,
    pub captured_at_ms: i64,
    pub status: DeliveryStatus,
    /// The signed body (JSON), exactly as signed.
    pub body_json: String,
}

impl From<StoredRecord> for Observation {
    fn from(r: StoredRecord) -> Self {
        Self {
            id: r.id.to_string(),
            seq: r.seq,
            station: r.station,
            kind: r.kind,
            captured_at_ms: r.captured_at.timestamp_millis(),
            status: match r.state {
                DeliveryState::Pending => DeliveryStatus::Pending,
                DeliveryState::InFlight => DeliveryStatus::InFlight,
                DeliveryState::Delivered { received_at, .. } => DeliveryStatus::Delivered {
                    received_at_ms: received_at.timestamp_millis(),
                },
                DeliveryState::Rejected { reason, detail, .. } => DeliveryStatus::Rejected {
                    reason: reason.into(),
                    detail,
                },
            },
            body_json: String::from_utf8_lossy(&r.envelope.body).into_owned(),
        }
    }
}

/// Which records a list returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum StatusFilter {
    All,
    Pending,
    InFlight,
    Delivered,
    Undelivered,
    Rejected,
}

impl StatusFilter {
    pub(crate) fn filter(self) -> Option<StateFilter> {
        match self {
            StatusFilter::All => None,
            StatusFilter::Pending => Some(StateFilter::Pending),
            StatusFilter::InFlight => Some(StateFilter::InFlight),
            StatusFilter::Delivered => Some(StateFilter::Delivered),
            StatusFilter::Undelivered => Some(StateFilter::Undelivered),
            StatusFilter::Rejected => Some(StateFilter::Rejected),
        }
    }
}

/// A page of records: filters, then `limit` records after `after_seq`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ObservationQuery {
    pub status: StatusFilter,
    pub station: Option<String>,
    pub kind: Option<String>,
    pub after_seq: Option<u64>,
    pub limit: u32,
}

/// Records per delivery state.
#[derive(Debug, Clone, uniffi::Record)]
pub struct OutboxCounts {
    pub pending: u64,
    pub in_flight: u64,
    pub delivered: u64,
    pub rejected: u64,
}

impl From<Counts> for OutboxCounts {
    fn from(c: Counts) -> Self {
        Self {
            pending: c.pending,
            in_flight: c.in_flight,
            delivered: c.delivered,
            rejected: c.rejected,
        }
    }
}

/// The result of a full integrity check.
#[derive(Debug, Clone, uniffi::Record)]
pub struct IntegrityReport {
    pub checked: u64,
    pub intact: bool,
    /// Each problem in words, naming the records concerned.
    pub problems: Vec<String>,
}

impl From<TamperReport> for IntegrityReport {
    fn from(r: TamperReport) -> Self {
        Self {
            checked: r.checked,
            intact: r.is_intact(),
            problems: r.faults.iter().map(|f| f.to_string()).collect(),
        }
    }
}

/// The device's enrollment.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EnrollmentInfo {
    pub server_url: String,
    pub org: String,
    pub device_id: String,
    pub stations: Vec<String>,
    /// Those of `stations` in the quick count's sample: their results
    /// protocol is the one to send first.
    pub priority_stations: Vec<String>,
    /// The coordinator's SMS gateway number, where `smsParts` texts go
    /// when mobile data is blocked: from the enrollment when one was set
    /// then, kept current at each sync; `None` until one is set.
    pub sms_number: Option<String>,
}

/// What a receipt by SMS settled.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SmsReceiptInfo {
    /// The records it names (hex ids), now delivered.
    pub delivered: Vec<String>,
    /// How many of them were still pending here.
    pub newly_delivered: u32,
    /// The coordinator's clock when it stored them, ms since the epoch.
    pub server_time_ms: i64,
}

impl From<observer_core::store::SmsReceipt> for SmsReceiptInfo {
    fn from(r: observer_core::store::SmsReceipt) -> Self {
        Self {
            delivered: r.delivered.iter().map(ToString::to_string).collect(),
            newly_delivered: u32::try_from(r.newly_delivered).unwrap_or(u32::MAX),
            server_time_ms: r.server_time_ms,
        }
    }
}

impl From<Enrollment> for EnrollmentInfo {
    fn from(e: Enrollment) -> Self {
        Self {
            server_url: e.url,
            org: e.org,
            device_id: e.device.to_string(),
            stations: e.stations,
            priority_stations: e.priority_stations,
            sms_number: e.sms_number,
        }
    }
}

/// A record the coordinator refused, and why.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RejectedRecord {
    pub id: String,
    pub reason: RejectionReason,
    /// The coordinator's sentence about it.
    pub detail: String,
}

/// What an audit of the coordinator's log proved.
#[derive(Debug, Clone, uniffi::Record)]
pub struct LogAuditReport {
    /// Delivered records proved in the log.
    pub records_proved: u64,
    /// The size of the log head they were proved under.
    pub log_size: u64,
}

/// What a sync did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncReport {
    pub sent: u64,
    /// Proved delivered by a verified receipt (new or already there).
    pub delivered: u64,
    pub rejected: Vec<RejectedRecord>,
    /// Still pending.
    pub remaining: u64,
    /// Server time minus device time, ms.
    pub clock_offset_ms: Option<i64>,
    /// Media bytes sent in this sync (uploads resume where they stopped).
    pub media_bytes_sent: u64,
    /// Media the coordinator now holds in full, hash checked.
    pub media_delivered: u64,
    /// Media not sent and why (a damaged copy on this phone), one line each.
    pub media_failed: Vec<String>,
    /// Form versions received from the coordinator that were new here.
    pub forms_received: u64,
    /// The stations the coordinator now assigns this observer to, when
    /// they changed at this sync (show them; new records go there).
    pub stations_assigned: Option<Vec<String>>,
    /// Proofs of the coordinator's log verified at this sync (that its log
    /// extends the head this phone held, that sampled delivered records
    /// are still in it).
    pub log_proofs_verified: u64,
    /// The size of the newest log checkpoint that every witness the
    /// coordinator names has cosigned, verified at this sync and extended
    /// by its receipt; `None` when no witness is named or none has
    /// cosigned yet (show "witnessed up to N records").
    pub witnessed_size: Option<u64>,
    /// Records carried for other phones (relay bundles) that the
    /// coordinator now holds.
    pub relayed: u64,
    /// Records carried for other phones that the coordinator refused for
    /// good (dropped: they would never be taken).
    pub relay_refused: u64,
    /// Records still carried for other phones.
    pub relay_remaining: u64,
}

impl From<SyncSummary> for SyncReport {
    fn from(s: SyncSummary) -> Self {
        Self {
            sent: s.sent,
            delivered: s.delivered(),
            remaining: s.remaining,
            clock_offset_ms: s.clock_offset_ms,
            media_bytes_sent: s.media_bytes_sent,
            media_delivered: s.media_delivered,
            forms_received: s.forms_received,
            stations_assigned: s.stations_assigned,
            log_proofs_verified: s.log_proofs_verified,
            witnessed_size: s.witnessed_size,
            relayed: s.relayed,
            relay_refused: s.relay_refused,
            relay_remaining: s.relay_remaining,
            media_failed: s
                .media_failed
                .into_iter()
                .map(|(sha, why)| format!("{sha}: {why}"))
                .collect(),
            rejected: s
                .rejected
                .into_iter()
                .map(|r| RejectedRecord {
                    id: r.id.to_string(),
                    reason: r.reason.into(),
                    detail: r.detail,
                })
                .collect(),
        }
    }
}

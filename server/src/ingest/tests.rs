//! The ingest decision on a real SQLite file, without HTTP.

use observer_core::identity::SigningKey;
use observer_core::protocol::{
    Batch, HEARTBEAT_DOMAIN, Heartbeat, RECEIPT_DOMAIN, RejectReason, SealedBatch, Signed,
    WireRecord,
};
use observer_core::record::{ChainPosition, Envelope, NewRecord, Sha256Digest, sign_record};
use observer_core::seal::{OrgSecretKey, SealedRecord};

use super::{FormCache, Ingest, IngestError, Verdict};
use crate::auth::AuthError;
use crate::rate::RateLimits;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{NewToken, Storage};

struct World {
    _dir: tempfile::TempDir,
    storage: SqliteStorage,
    rates: RateLimits,
    key: SigningKey,
    seal: OrgSecretKey,
    forms: FormCache,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(&dir.path().join("server.db")).unwrap();
        Self {
            _dir: dir,
            storage,
            rates: RateLimits::new(1000, 1000),
            key: SigningKey::generate().unwrap(),
            seal: OrgSecretKey::generate(),
            forms: FormCache::default(),
        }
    }

    fn ingest(&self) -> Ingest<'_> {
        Ingest {
            storage: &self.storage,
            rates: &self.rates,
            org: "org",
            key: &self.key,
            seal: &self.seal,
            forms: &self.forms,
        }
    }

    /// A phone enrolled for station S-1.
    fn phone(&self) -> SigningKey {
        let phone = SigningKey::generate().unwrap();
        let hash = Sha256Digest::of(b"token");
        let token = NewToken {
            hash,
            stations: vec!["S-1".into()],
            name: None,
            expires_at_ms: i64::MAX,
        };
        self.storage.add_token(&token, 0).unwrap();
        self.storage
            .enroll(&hash, &phone.public_key(), None, 0)
            .unwrap()
            .unwrap();
        phone
    }
}

/// `n` chained records of `key`'s device.
fn records(key: &SigningKey, n: u64) -> Vec<Envelope> {
    let new = NewRecord::builder("S-1", "voting", 1, "checklist")
        .payload(serde_json::json!({"queue": 3}))
        .build()
        .unwrap();
    let mut pos = ChainPosition::first(key);
    pos.org = Some("org".into());
    let mut out = Vec::new();
    for _ in 0..n {
        let env = sign_record(&new, &pos, key).unwrap();
        pos = pos.after(env.id());
        out.push(env);
    }
    out
}

fn batch(key: &SigningKey, envs: &[Envelope]) -> Batch {
    let hb = Heartbeat {
        device: key.public_key().device_id(),
        seq: envs.len() as u64,
        head: envs.last().map(Envelope::id),
        at_ms: 0,
    };
    Batch {
        heartbeat: Signed::sign(HEARTBEAT_DOMAIN, &hb, key),
        records: envs.iter().map(WireRecord::from).collect(),
        sealed: vec![],
    }
}

#[test]
fn a_batch_is_stored_once_and_its_receipt_verifies() {
    let w = World::new();
    let phone = w.phone();
    let envs = records(&phone, 3);
    let first = w.ingest().batch(&batch(&phone, &envs)).unwrap();
    assert_eq!(first.verdict, Verdict::Stored);
    assert_eq!(first.receipt.accepted.len(), 3);
    let opened: observer_core::protocol::Receipt = first
        .signed
        .open("receipt", RECEIPT_DOMAIN, &w.key.public_key())
        .unwrap();
    assert_eq!(opened, first.receipt);

    let again = w.ingest().batch(&batch(&phone, &envs)).unwrap();
    assert_eq!(again.verdict, Verdict::Stored);
    assert!(again.receipt.accepted.is_empty());
    assert_eq!(again.receipt.already.len(), 3);
    assert_eq!(again.receipt.tree, first.receipt.tree);
}

#[test]
fn a_forged_record_is_refused_and_the_rest_kept() {
    let w = World::new();
    let phone = w.phone();
    let mut envs = records(&phone, 3);
    envs[1].sig[0] ^= 1;
    let settled = w.ingest().batch(&batch(&phone, &envs)).unwrap();
    assert_eq!(settled.verdict, Verdict::Stored);
    assert_eq!(settled.receipt.accepted.len(), 2);
    let refused = &settled.receipt.rejected;
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].position, refused[0].reason),
        (1, RejectReason::BadSignature)
    );

    // Only forged records: the answer says so, with the receipt.
    let mut forged = records(&phone, 1);
    forged[0].sig[5] ^= 1;
    let settled = w.ingest().batch(&batch(&phone, &forged)).unwrap();
    assert!(matches!(settled.verdict, Verdict::AllRefused(ref s) if s.contains("bad_signature")));
}

#[test]
fn records_signed_for_another_organisation_are_refused() {
    let w = World::new();
    let phone = w.phone();
    let envs = records(&phone, 1);
    let other = Ingest {
        org: "someone-else",
        ..w.ingest()
    };
    let settled = other.batch(&batch(&phone, &envs)).unwrap();
    assert_eq!(settled.receipt.rejected[0].reason, RejectReason::WrongOrg);
    assert_eq!(w.storage.devices().unwrap()[0].records, 0);
}

#[test]
fn an_unknown_or_forged_heartbeat_changes_nothing() {
    let w = World::new();
    let phone = w.phone();
    let stranger = SigningKey::generate().unwrap();
    let envs = records(&stranger, 2);
    assert!(matches!(
        w.ingest().batch(&batch(&stranger, &envs)),
        Err(IngestError::Auth(AuthError::UnknownDevice(_)))
    ));
    // The enrolled device's id under a stranger's signature.
    let mut b = batch(&phone, &records(&phone, 1));
    b.heartbeat = Signed {
        body: b.heartbeat.body.clone(),
        sig: stranger.sign(b"x").to_vec(),
    };
    assert!(matches!(
        w.ingest().batch(&b),
        Err(IngestError::Auth(AuthError::BadHeartbeat(_)))
    ));
    assert_eq!(w.storage.devices().unwrap()[0].records, 0);
}

#[test]
fn a_revoked_device_learns_it_and_its_new_records_are_quarantined() {
    let w = World::new();
    let phone = w.phone();
    let envs = records(&phone, 3);
    w.ingest().batch(&batch(&phone, &envs[..1])).unwrap();
    w.storage
        .revoke(&phone.public_key().device_id(), 1)
        .unwrap();
    let settled = w.ingest().batch(&batch(&phone, &envs)).unwrap();
    assert_eq!(settled.verdict, Verdict::DeviceRevoked);
    assert_eq!(settled.receipt.already.len(), 1);
    assert!(
        settled
            .receipt
            .rejected
            .iter()
            .all(|r| r.reason == RejectReason::Quarantined)
    );
    assert_eq!(settled.receipt.rejected.len(), 2);
}

#[test]
fn a_sealed_outbox_that_does_not_open_is_anonymous_and_stores_nothing() {
    let w = World::new();
    let phone = w.phone();
    let envs = records(&phone, 2);
    let device = phone.public_key().device_id();
    // Sealed to another organisation's key: nothing opens.
    let wrong = OrgSecretKey::generate().public_key();
    let sealed = |org: &observer_core::seal::OrgPublicKey| SealedBatch {
        sealed: envs
            .iter()
            .enumerate()
            .map(|(i, e)| SealedRecord::seal(org, &device, i as u64 + 1, e).unwrap())
            .collect(),
    };
    assert!(matches!(
        w.ingest().sealed_outbox(&sealed(&wrong)),
        Err(IngestError::NothingVerified)
    ));
    assert_eq!(w.storage.devices().unwrap()[0].records, 0);
    assert!(matches!(
        w.ingest().sealed_outbox(&SealedBatch { sealed: vec![] }),
        Err(IngestError::BadSealedBatch { count: 0 })
    ));
    // Sealed to this organisation: both stored, no heartbeat needed.
    let settled = w
        .ingest()
        .sealed_outbox(&sealed(&w.seal.public_key()))
        .unwrap();
    assert_eq!(settled.receipt.accepted.len(), 2);
}

#[test]
fn a_batch_over_the_record_limit_is_refused_whole() {
    let w = World::new();
    let phone = w.phone();
    let one = records(&phone, 1);
    let mut b = batch(&phone, &one);
    b.records = vec![b.records[0].clone(); observer_core::protocol::limits::MAX_BATCH_RECORDS + 1];
    assert!(matches!(
        w.ingest().batch(&b),
        Err(IngestError::TooManyRecords { .. })
    ));
}

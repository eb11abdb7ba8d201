//! The store's side of SMS reports (see [`crate::sms`]): a record's or a
//! heartbeat's texts, and which records went by SMS. A record sent by SMS
//! stays pending: only the coordinator's receipt, by SMS or at the next
//! sync, proves it arrived.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{DeliveryState, Store, StoreError};
use crate::forms::FormDefinition;
use crate::identity::DeviceId;
use crate::protocol::{HEARTBEAT_DOMAIN, Heartbeat, RECEIPT_DOMAIN, Receipt, Signed};
use crate::record::{RecordId, now_ms};
use crate::sms::{self, Context, ReceiptContext, SmsError};

/// What the phone's receiver needs: its organisation and its forms.
struct Held<'a>(&'a Store, Option<String>);

impl Context for Held<'_> {
    fn org(&self) -> Option<&str> {
        self.1.as_deref()
    }
    fn form(&self, id: &str, version: u32) -> Option<FormDefinition> {
        self.0.form(id, Some(version)).ok().flatten()
    }
}

/// What the phone knows that a receipt by SMS leaves out.
struct Mine<'a> {
    store: &'a Store,
    org: String,
}

impl ReceiptContext for Mine<'_> {
    fn org(&self) -> &str {
        &self.org
    }
    fn device(&self) -> &DeviceId {
        &self.store.device
    }
    fn record_id(&self, seq: u64) -> Option<RecordId> {
        let q = super::Query::new().after_seq(seq.checked_sub(1)?).limit(1);
        let found = self.store.list(&q).ok()?.into_iter().next()?;
        (found.seq == seq).then_some(found.id)
    }
}

/// What a receipt by SMS settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsReceipt {
    /// The records it names (stored now, or held already), now delivered.
    pub delivered: Vec<RecordId>,
    /// Of those, how many this phone still held as pending.
    pub newly_delivered: usize,
    /// The coordinator's clock when it stored them, ms since the Unix epoch.
    pub server_time_ms: i64,
}

impl Store {
    /// Takes the coordinator's receipt texted back by its gateway (the
    /// texts in any order): rebuilds the signed receipt, verifies it with
    /// the pinned coordinator key, and marks the records it names
    /// delivered, exactly as a receipt at sync does. A text from anyone
    /// else changes nothing. The log's proofs wait for the next sync,
    /// which asks for them from the newest head it checked.
    pub fn accept_sms_receipt<S: AsRef<str>>(&self, texts: &[S]) -> Result<SmsReceipt, StoreError> {
        let enrollment = self.enrollment().ok_or(SmsError::NotEnrolled)?;
        let mine = Mine {
            store: self,
            org: enrollment.org.clone(),
        };
        let signed = sms::read_receipt(texts, &mine)?;
        let receipt: Receipt = signed
            .open("receipt", RECEIPT_DOMAIN, &enrollment.coordinator)
            .map_err(|_| SmsError::NotFromCoordinator)?;
        if receipt.device != self.device || receipt.org != enrollment.org {
            return Err(SmsError::NotFromCoordinator.into());
        }
        let delivered: Vec<RecordId> = receipt
            .accepted
            .iter()
            .chain(&receipt.already)
            .map(|a| a.id)
            .collect();
        // A receipt that settles nothing new (the same text again, a copy
        // sent twice) is not kept again: texts cannot grow the store.
        let mut settles = false;
        for id in &delivered {
            settles |= matches!(
                self.get(id)?.map(|r| r.state),
                Some(DeliveryState::Pending | DeliveryState::InFlight)
            );
        }
        let newly_delivered = if settles {
            let json = serde_json::to_vec(&signed).expect("serialises");
            self.apply_receipt(&json, &delivered, &[])?
        } else {
            0
        };
        tracing::info!(
            records = delivered.len(),
            newly = newly_delivered,
            "a receipt by SMS verified"
        );
        Ok(SmsReceipt {
            delivered,
            newly_delivered,
            server_time_ms: receipt.server_time_ms,
        })
    }

    /// This device's signed heartbeat now: its newest seq and record.
    pub fn signed_heartbeat(&self) -> Result<Signed, StoreError> {
        let head = self.head()?;
        let hb = Heartbeat {
            device: self.device.clone(),
            seq: head.map_or(0, |h| h.seq),
            head: head.map(|h| h.id),
            at_ms: now_ms().timestamp_millis(),
        };
        Ok(Signed::sign(HEARTBEAT_DOMAIN, &hb, &self.key))
    }

    /// The SMS texts (one segment each, GSM 7-bit) of record `id`, exactly
    /// as signed: send them in any order to the coordinator's gateway.
    pub fn sms_parts(&self, id: &RecordId) -> Result<Vec<String>, StoreError> {
        let rec = self
            .get(id)?
            .ok_or_else(|| SmsError::NotPackable(format!("record {id} is not on this device")))?;
        let body: crate::record::Body = serde_json::from_slice(&rec.envelope.body)
            .map_err(|e| SmsError::NotPackable(e.to_string()))?;
        // SMS is readable by every mobile operator on the way: what the
        // organisation seals must never travel in it.
        if self.form_seals(&body.form.id, body.form.version)? {
            return Err(SmsError::NotPackable(format!(
                "the organisation seals the {} form, and SMS would show it to the mobile network; send it over the internet or in a relay bundle",
                body.form.id
            ))
            .into());
        }
        let held = Held(self, self.enrollment().map(|e| e.org));
        Ok(sms::record_parts(&rec.envelope, &held, None)?)
    }

    /// A signed heartbeat as one SMS text: tells the coordinator how many
    /// records this phone holds even when none of them can be sent.
    pub fn heartbeat_sms_parts(&self) -> Result<Vec<String>, StoreError> {
        Ok(sms::heartbeat_parts(&self.signed_heartbeat()?)?)
    }

    /// Notes that record `id` was sent by SMS now (the app calls it when
    /// the platform reports the texts sent). It stays pending.
    pub fn mark_sent_by_sms(&self, id: &RecordId) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached("INSERT OR REPLACE INTO sms_sent (tag, sent_at) VALUES (?1, ?2)")?
            .execute(params![
                self.vault.tag(id.as_bytes()),
                Utc::now().timestamp_millis()
            ])?;
        Ok(())
    }

    /// When record `id` was last sent by SMS, if it was.
    pub fn sent_by_sms_at(&self, id: &RecordId) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = self
            .conn()?
            .prepare_cached("SELECT sent_at FROM sms_sent WHERE tag = ?1")?
            .query_row([self.vault.tag(id.as_bytes())], |r| r.get(0))
            .optional()?;
        Ok(at.and_then(DateTime::from_timestamp_millis))
    }
}

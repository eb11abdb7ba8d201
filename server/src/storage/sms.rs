//! Where SMS report parts wait for the rest of their message, and the log
//! of what every received SMS came to: a trait of its own beside
//! [`super::Storage`], with its own conformance story.

use observer_core::sms::Part;

use super::StorageError;

/// A message not yet complete: parts held, from one sender.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WaitingSms {
    /// The number it came from (as the gateway gave it; never identity).
    pub sender: String,
    /// The message id (3 characters).
    pub message: String,
    /// Parts it has.
    #[serde(rename = "parts")]
    pub total: usize,
    /// Parts held.
    pub held: usize,
    /// When its first held part arrived.
    pub first_ms: i64,
}

/// What one received SMS came to.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SmsLogEntry {
    /// When.
    pub at_ms: i64,
    /// The number it came from.
    pub sender: String,
    /// Which gateway delivered it.
    pub gateway: String,
    /// A stable code: [`crate::sms::OUTCOMES`].
    pub outcome: String,
    /// A sentence for people.
    pub detail: String,
}

/// Parts and the log. Holding a part and reading its message's parts is
/// one transaction, so two nodes receiving the last two parts at once
/// both see the whole message (and its record is stored once, by its id).
pub trait SmsStore: Send + Sync {
    /// Holds `part` from `sender` (a copy already held changes nothing)
    /// and returns every part held of its message from that sender.
    fn hold_sms_part(
        &self,
        sender: &str,
        part: &Part,
        now_ms: i64,
    ) -> Result<Vec<Part>, StorageError>;

    /// How many parts are held from `sender`, of every message.
    fn sms_parts_held(&self, sender: &str) -> Result<u64, StorageError>;

    /// Forgets a message's parts (it was complete, or refused whole).
    fn drop_sms_message(
        &self,
        sender: &str,
        message: &str,
        total: usize,
    ) -> Result<(), StorageError>;

    /// Forgets every message whose first part arrived before `before_ms`,
    /// returning them.
    fn expire_sms(&self, before_ms: i64) -> Result<Vec<WaitingSms>, StorageError>;

    /// Messages still incomplete, oldest first.
    fn sms_waiting(&self) -> Result<Vec<WaitingSms>, StorageError>;

    /// Appends to the SMS log.
    fn log_sms(&self, entry: &SmsLogEntry) -> Result<(), StorageError>;

    /// The newest `limit` log entries, newest first.
    fn sms_log(&self, limit: u32) -> Result<Vec<SmsLogEntry>, StorageError>;
}

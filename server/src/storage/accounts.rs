//! Where coordinator accounts and their sessions are kept: a trait of its
//! own beside [`super::Storage`], with its own conformance story
//! (`tests/storage_conformance.rs`), because nothing about records needs it.

use observer_core::record::Sha256Digest;

use super::StorageError;
pub use crate::accounts::{Account, Session};

/// Accounts and sessions. Every write is one statement or one
/// transaction, so that several nodes on one database agree.
pub trait AccountStore: Send + Sync {
    /// Stores a new account; false, and nothing changed, if the name is taken.
    fn add_account(&self, account: &Account) -> Result<bool, StorageError>;

    /// The account with this name.
    fn account(&self, name: &str) -> Result<Option<Account>, StorageError>;

    /// Every account, by name.
    fn accounts(&self) -> Result<Vec<Account>, StorageError>;

    /// Replaces an account's password hash and ends all its sessions (a
    /// new password is how a coordinator locks out whoever learnt the old
    /// one); false if there is no such account.
    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StorageError>;

    /// Disables (ending all its sessions) or enables an account; false if
    /// there is no such account.
    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StorageError>;

    /// Sets (a sealed key) or removes (`None`) an account's second
    /// factor, forgetting the last step used; false if there is no such
    /// account.
    fn set_totp(&self, name: &str, sealed: Option<&[u8]>) -> Result<bool, StorageError>;

    /// Records that a TOTP code of `step` was used to sign in, only if
    /// `step` is later than any used before (one conditional statement, so
    /// that a code replayed to another node at the same moment is refused
    /// there); false if it was not.
    fn use_totp_step(&self, name: &str, step: i64) -> Result<bool, StorageError>;

    /// Counts a login attempt on an existing account: a success clears the
    /// failures and notes the time, a failure adds one (in the database,
    /// so that attempts spread over nodes add up).
    fn note_login(&self, name: &str, succeeded: bool, now_ms: i64) -> Result<(), StorageError>;

    /// Stores a new session, dropping every expired one.
    fn create_session(&self, session: &Session, now_ms: i64) -> Result<(), StorageError>;

    /// The session with this token digest.
    fn session(&self, digest: &Sha256Digest) -> Result<Option<Session>, StorageError>;

    /// Notes that the session was used at `now_ms`.
    fn touch_session(&self, digest: &Sha256Digest, now_ms: i64) -> Result<(), StorageError>;

    /// Ends a session (logout).
    fn end_session(&self, digest: &Sha256Digest) -> Result<(), StorageError>;
}

/// The oldest `created_at_ms` and `last_seen_ms` a live session can have
/// at `now_ms` (sessions older than either are dropped).
pub(crate) fn expiry_bounds(now_ms: i64) -> (i64, i64) {
    let ms = |d: std::time::Duration| d.as_millis() as i64;
    (
        now_ms - ms(crate::accounts::SESSION_LIFETIME),
        now_ms - ms(crate::accounts::SESSION_IDLE),
    )
}

/// A stored role that does not parse is corruption.
pub(crate) fn role(text: &str) -> Result<crate::accounts::Role, StorageError> {
    text.parse()
        .map_err(|_| StorageError::Corrupt(format!("an account has the unknown role {text:?}")))
}

/// A stored digest that does not parse is corruption.
pub(crate) fn digest(text: &str) -> Result<Sha256Digest, StorageError> {
    text.parse()
        .map_err(|_| StorageError::Corrupt("a session's digest".into()))
}

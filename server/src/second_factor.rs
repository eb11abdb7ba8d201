//! The optional second factor of a coordinator account: a TOTP code
//! (RFC 6238: HMAC-SHA-1, six digits, 30-second steps, one step of clock
//! skew either way, what every authenticator app does), computed by the
//! maintained `totp-rs` crate.
//!
//! The TOTP key is a secret the server must be able to read, so it cannot
//! be hashed like a password; it is sealed to the organisation's key
//! ([`observer_core::seal::seal_secret`]) and bound to the account's name,
//! so that a copy of the database (without the unlocked keys) holds no
//! usable key, and a sealed key moved to another account does not open.
//! A code is accepted once: the step it matched is stored, and a code of
//! that step or an earlier one is refused (RFC 6238 §5.2).

use observer_core::seal::{OrgPublicKey, OrgSecretKey, open_secret, seal_secret};
use ring::rand::{SecureRandom as _, SystemRandom};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

use crate::accounts::Account;

/// Bytes of a TOTP key: 160 bits, RFC 4226's recommendation for SHA-1.
const KEY_BYTES: usize = 20;

/// Why a second factor could not be set up or checked.
#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    #[error("the system's random number generator failed")]
    Random,
    #[error("the sealed TOTP key does not open with this server's keys: {0}")]
    Sealed(#[from] observer_core::seal::SealError),
    #[error("TOTP: {0}")]
    Totp(String),
}

/// A new TOTP key for an account, sealed for storage, and what the
/// coordinator's authenticator app needs to learn it.
pub struct Enrollment {
    /// What is stored.
    pub sealed: Vec<u8>,
    /// The `otpauth://` URI (for a QR code).
    pub uri: Zeroizing<String>,
    /// The key in base32, for typing into an app by hand.
    pub key_base32: Zeroizing<String>,
}

/// The associated data that binds a sealed key to its account.
fn context(account: &str) -> Vec<u8> {
    [b"observer/totp/v1\0".as_slice(), account.as_bytes()].concat()
}

fn totp(key: &[u8], issuer: &str, account: &str) -> Result<Totp, SecondFactorError> {
    // `:` separates issuer and account in the URI; neither may hold one.
    let clean = |s: &str| s.replace(':', " ");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(Secret::from(key.to_vec()))
        .with_account_name(clean(account))
        .with_issuer(Some(clean(issuer)))
        .build()
        .map_err(|e| SecondFactorError::Totp(e.to_string()))
}

/// A new key for `account`, sealed to `org`, named `issuer` in the app.
pub fn enroll(
    org: &OrgPublicKey,
    issuer: &str,
    account: &str,
) -> Result<Enrollment, SecondFactorError> {
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    SystemRandom::new()
        .fill(key.as_mut())
        .map_err(|_| SecondFactorError::Random)?;
    let t = totp(key.as_ref(), issuer, account)?;
    Ok(Enrollment {
        sealed: seal_secret(org, &context(account), key.as_ref())?,
        uri: Zeroizing::new(
            t.to_url()
                .map_err(|e| SecondFactorError::Totp(e.to_string()))?,
        ),
        key_base32: Zeroizing::new(t.secret().to_base32()),
    })
}

/// What the app needs, again, for a key sealed by [`enroll`] and not yet
/// confirmed (the setup page shown again after a mistyped code).
pub fn reopen(
    org: &OrgSecretKey,
    issuer: &str,
    account: &str,
    sealed: &[u8],
) -> Result<Enrollment, SecondFactorError> {
    let key = open_secret(org, &context(account), sealed)?;
    let t = totp(&key, issuer, account)?;
    Ok(Enrollment {
        sealed: sealed.to_vec(),
        uri: Zeroizing::new(
            t.to_url()
                .map_err(|e| SecondFactorError::Totp(e.to_string()))?,
        ),
        key_base32: Zeroizing::new(t.secret().to_base32()),
    })
}

/// The time step `code` matches for the key `sealed` of `account` at
/// `now_secs`, if it is right and newer than `last_step`.
pub fn check(
    org: &OrgSecretKey,
    account: &str,
    sealed: &[u8],
    last_step: Option<i64>,
    code: &str,
    now_secs: u64,
) -> Result<Option<i64>, SecondFactorError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let key = open_secret(org, &context(account), sealed)?;
    let step = totp(&key, "", account)?
        .check(&code, now_secs)
        .and_then(|s| i64::try_from(s).ok());
    Ok(step.filter(|s| last_step.is_none_or(|last| *s > last)))
}

/// Whether a sign-in of `account` needs a code.
pub fn required(account: &Account) -> bool {
    account.totp_sealed.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an authenticator app shows, from the key it was given.
    fn app_code(e: &Enrollment, account: &str, at: u64) -> String {
        let key = Secret::try_from_base32(e.key_base32.as_str()).unwrap();
        totp(key.as_bytes(), "", account)
            .unwrap()
            .generate(at)
            .to_string()
    }

    #[test]
    fn a_code_is_accepted_once_and_only_for_its_account() {
        let org = OrgSecretKey::generate();
        let e = enroll(&org.public_key(), "Observer: Almaty", "aigerim").unwrap();
        assert!(e.uri.starts_with("otpauth://totp/"), "{}", *e.uri);
        assert!(e.uri.contains("secret="));
        let now = 1_800_000_000;
        let code = app_code(&e, "aigerim", now);
        let step = check(&org, "aigerim", &e.sealed, None, &code, now)
            .unwrap()
            .unwrap();
        assert_eq!(step, (now / 30) as i64);
        // The same code again is a replay.
        assert_eq!(
            check(&org, "aigerim", &e.sealed, Some(step), &code, now).unwrap(),
            None
        );
        // One step of skew either way is allowed, two are not.
        assert!(
            check(&org, "aigerim", &e.sealed, None, &code, now + 30)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            check(&org, "aigerim", &e.sealed, None, &code, now + 90).unwrap(),
            None
        );
        // Spaces are what people type; letters are not a code.
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(
            check(&org, "aigerim", &e.sealed, None, &spaced, now)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            check(&org, "aigerim", &e.sealed, None, "12345a", now).unwrap(),
            None
        );
        // The sealed key moved to another account does not open.
        assert!(check(&org, "daniyar", &e.sealed, None, &code, now).is_err());
        assert!(
            check(
                &OrgSecretKey::generate(),
                "aigerim",
                &e.sealed,
                None,
                &code,
                now
            )
            .is_err()
        );
    }

    #[test]
    fn the_rfc_6238_sha1_vector_holds() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (eight digits);
        // six digits are its last six.
        let key = b"12345678901234567890";
        let t = totp(key, "x", "y").unwrap();
        assert_eq!(t.generate(59).to_string(), "287082");
        assert_eq!(t.generate(1_111_111_109).to_string(), "081804");
    }
}

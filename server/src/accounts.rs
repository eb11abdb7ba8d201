//! Coordinator accounts: who may sign in to the workspace, with which
//! role, and the decisions about passwords, login throttling and sessions.
//! Nothing here knows HTTP; `crate::http::session` maps these decisions to
//! cookies and pages, [`crate::storage::AccountStore`] keeps them.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate, PHC strings, so
//! that the parameters travel with each hash and can be raised later).
//! A session is a random 256-bit token in a cookie; only its SHA-256
//! digest is stored, so a copy of the database signs nobody in. The CSRF
//! token of a session is derived from the session token, so it is never
//! stored and never valid for another session.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use base64::Engine as _;
use observer_core::record::Sha256Digest;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::Serialize;

/// Shortest password accepted: long enough that the throttle, not the
/// password, is what an online guesser runs into.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Longest password accepted, in bytes (a bound on what is hashed).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Longest account name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Longest region name, in bytes.
pub const MAX_REGION_BYTES: usize = 200;

/// Failed logins in a row before each next attempt waits.
pub const FREE_FAILURES: u32 = 5;

/// Longest wait between attempts on one account.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// How long a session lasts at most, however active.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// How long a session lasts without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(2 * 3600);

/// What a coordinator may do, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: accounts, devices, revocation, forms.
    Admin,
    /// An admin of one region: its accounts, devices, revocation, codes,
    /// review and export, limited to that region's stations (see
    /// [`Account::region`]). The audit log, the day's plan and forms are
    /// national and stay with admins.
    Coordinator,
    /// Enrollment codes and assignments.
    Supervisor,
    /// Review of records.
    Verifier,
    /// Reading and export.
    Analyst,
}

/// One thing a request may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// The overview, records, devices.
    Read,
    /// The audit log.
    ReadAudit,
    /// Accounts: list, add, disable.
    ManageUsers,
    /// Revoking a device.
    Revoke,
    /// Issuing enrollment codes and assigning stations.
    Enroll,
    /// Review decisions on records.
    Review,
    /// Exporting every record.
    Export,
    /// Setting the day's deadlines and when a device counts as silent.
    PlanDay,
    /// Publishing a form version (phones fill it in from their next sync).
    PublishForms,
    /// The quick count: its sample, estimates and verdict (national: the
    /// sample and its margins are the country's).
    QuickCount,
    /// The SMS reports' log and gateways (national: a sender's number is
    /// an observer's phone number and belongs to no one region).
    ReadSms,
}

impl Permission {
    /// Whether this concerns the whole country: the audit log (every
    /// region's actions), the day's plan and the forms (one for all); no
    /// account of one region has it, whatever its role.
    pub fn national(self) -> bool {
        matches!(
            self,
            Permission::ReadAudit
                | Permission::PlanDay
                | Permission::PublishForms
                | Permission::QuickCount
                | Permission::ReadSms
        )
    }
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Coordinator,
        Role::Supervisor,
        Role::Verifier,
        Role::Analyst,
    ];

    /// Its name, as typed on the command line and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Coordinator => "coordinator",
            Role::Supervisor => "supervisor",
            Role::Verifier => "verifier",
            Role::Analyst => "analyst",
        }
    }

    /// Whether this role may do `p`.
    pub fn may(self, p: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Admin => true,
            Role::Coordinator => !p.national(),
            Role::Supervisor => {
                matches!(
                    p,
                    P::Read | P::Enroll | P::PlanDay | P::QuickCount | P::ReadSms
                )
            }
            Role::Verifier => matches!(p, P::Read | P::Review | P::QuickCount),
            Role::Analyst => matches!(p, P::Read | P::Export | P::QuickCount),
        }
    }

    /// The roles that may do `p` (what a refusal names).
    pub fn allowed(p: Permission) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.may(p)).collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| AccountError::UnknownRole(s.to_string()))
    }
}

/// Why an account or password is refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no role {0:?}: the roles are admin, coordinator, supervisor, verifier, analyst")]
    UnknownRole(String),
    #[error("an admin works on the whole country: give a region to a coordinator instead")]
    AdminWithRegion,
    #[error("a coordinator is the admin of one region: give --region")]
    CoordinatorWithoutRegion,
    #[error("a region name is 1 to {MAX_REGION_BYTES} bytes of printable text")]
    BadRegion,
    #[error("an account name is 1 to {MAX_NAME_BYTES} letters, digits, '.', '-' or '_'")]
    BadName,
    #[error("a password has at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("a password has at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
    #[error("the system's random number generator failed")]
    Random,
}

impl AccountError {
    /// The workspace catalogue's message for this refusal (the workspace
    /// speaks the reader's language; the command line, English).
    pub fn text_id(&self) -> &'static str {
        match self {
            AccountError::UnknownRole(_) => "err-unknown-role",
            AccountError::AdminWithRegion => "err-admin-region",
            AccountError::CoordinatorWithoutRegion => "err-coordinator-region",
            AccountError::BadRegion => "err-bad-region",
            AccountError::BadName => "err-bad-name",
            AccountError::PasswordTooShort => "err-password-short",
            AccountError::PasswordTooLong => "err-password-long",
            AccountError::Hash(_) | AccountError::Random => "err-internal",
        }
    }
}

/// Checks an account name: short, and made of characters that need no
/// escaping anywhere it is shown or logged.
pub fn check_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::BadName)
    }
}

/// A stored account.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Account {
    pub name: String,
    pub role: Role,
    /// The Argon2id hash, as a PHC string.
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
    pub created_at_ms: i64,
    /// Failed logins since the last successful one.
    pub failed_logins: u32,
    pub last_failed_ms: Option<i64>,
    pub last_login_ms: Option<i64>,
    /// The one registry region this account works on; `None`: the whole
    /// country. Checked by [`check_scope`] against the role.
    pub region: Option<String>,
    /// The TOTP key, sealed to the organisation (see
    /// [`crate::second_factor`]); `None`: password only.
    #[serde(rename = "totp", serialize_with = "is_set")]
    pub totp_sealed: Option<Vec<u8>>,
    /// The last TOTP time step accepted (a code is used once).
    #[serde(skip)]
    pub totp_last_step: Option<i64>,
}

fn is_set<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(v.is_some())
}

impl Account {
    /// A new, enabled account that has never signed in, with a role and
    /// region that go together.
    pub fn new(
        name: &str,
        role: Role,
        region: Option<String>,
        password_hash: String,
        now_ms: i64,
    ) -> Result<Self, AccountError> {
        check_name(name)?;
        check_scope(role, region.as_deref())?;
        Ok(Self {
            name: name.to_string(),
            role,
            password_hash,
            disabled: false,
            created_at_ms: now_ms,
            failed_logins: 0,
            last_failed_ms: None,
            last_login_ms: None,
            region,
            totp_sealed: None,
            totp_last_step: None,
        })
    }

    /// Whether this account may do `p`: its role may, and `p` is not
    /// national while the account works on one region.
    pub fn may(&self, p: Permission) -> bool {
        self.role.may(p) && (self.region.is_none() || !p.national())
    }

    /// Whether this account may work on a station in `region` (`None`: a
    /// station the registry does not know, which only national accounts
    /// see).
    pub fn covers(&self, region: Option<&str>) -> bool {
        match &self.region {
            None => true,
            Some(mine) => region == Some(mine.as_str()),
        }
    }

    /// Whether this account may manage `other`: a national admin any,
    /// a coordinator only the accounts of its own region.
    pub fn manages(&self, other: &Account) -> bool {
        self.region.is_none() || (other.region.is_some() && other.region == self.region)
    }
}

/// Checks that a role and a region go together: an admin is national, a
/// coordinator has a region, the other roles may be either. The region's
/// name is bounded and printable (whether the registry knows it is the
/// caller's check: the registry may be imported later).
pub fn check_scope(role: Role, region: Option<&str>) -> Result<(), AccountError> {
    if let Some(r) = region
        && (r.trim().is_empty() || r.len() > MAX_REGION_BYTES || r.chars().any(char::is_control))
    {
        return Err(AccountError::BadRegion);
    }
    match (role, region) {
        (Role::Admin, Some(_)) => Err(AccountError::AdminWithRegion),
        (Role::Coordinator, None) => Err(AccountError::CoordinatorWithoutRegion),
        _ => Ok(()),
    }
}

/// Argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
fn hasher() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 costs");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

fn random<const N: usize>() -> Result<[u8; N], AccountError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| AccountError::Random)?;
    Ok(b)
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::PasswordTooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::PasswordTooShort);
    }
    Ok(())
}

/// The PHC string of a new password (checked first).
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    check_password(password)?;
    let salt = random::<16>()?;
    hasher()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches `account`'s hash. Without an account, a
/// decoy hash is checked instead, so that the time taken does not say
/// whether a name exists.
pub fn password_matches(account: Option<&Account>, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let decoy;
    let phc = match account {
        Some(a) => a.password_hash.as_str(),
        None => {
            decoy = decoy_hash();
            decoy.as_str()
        }
    };
    let ok = hasher().verify_password(password.as_bytes(), phc).is_ok();
    ok && account.is_some_and(|a| !a.disabled)
}

/// A hash of a password nobody has, with the same parameters as real
/// ones, made once.
fn decoy_hash() -> String {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY
        .get_or_init(|| {
            let salt = [0x5a; 16];
            hasher()
                .hash_password_with_salt(b"observer decoy password", &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}

/// A random password for a new account: 20 characters of base64url
/// (120 bits).
pub fn generate_password() -> Result<String, AccountError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<15>()?))
}

/// How long the next login attempt on an account must wait after
/// `failures` failed ones in a row, the last at `last_failed_ms`: nothing
/// for the first [`FREE_FAILURES`], then 2 s, doubling, at most
/// [`MAX_WAIT`]. `None`: it may try now.
pub fn login_wait(failures: u32, last_failed_ms: Option<i64>, now_ms: i64) -> Option<Duration> {
    if failures < FREE_FAILURES {
        return None;
    }
    let doublings = (failures - FREE_FAILURES).min(20);
    let wait = Duration::from_secs(2u64 << doublings).min(MAX_WAIT);
    let since = Duration::from_millis(now_ms.saturating_sub(last_failed_ms?).max(0) as u64);
    wait.checked_sub(since).filter(|d| !d.is_zero())
}

/// A session's secret, as it travels in the cookie.
pub struct SessionToken(String);

impl SessionToken {
    /// A new random token.
    pub fn generate() -> Result<Self, AccountError> {
        Ok(Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<32>()?),
        ))
    }

    /// The token a cookie carries (any text; checked by its digest).
    pub fn from_cookie(value: &str) -> Self {
        Self(value.to_string())
    }

    /// The cookie's value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What is stored: the digest, never the token.
    pub fn digest(&self) -> Sha256Digest {
        Sha256Digest::of(self.0.as_bytes())
    }

    /// The CSRF token every form of this session carries.
    pub fn csrf(&self) -> String {
        let d = Sha256Digest::of(&[b"observer/csrf/v1\0", self.0.as_bytes()].concat());
        d.to_string()
    }

    /// Whether `given` is this session's CSRF token (compared through
    /// digests, so that the timing says nothing of a near miss).
    pub fn csrf_matches(&self, given: &str) -> bool {
        Sha256Digest::of(given.as_bytes()) == Sha256Digest::of(self.csrf().as_bytes())
    }
}

/// A stored session.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// The digest of its token.
    pub digest: Sha256Digest,
    pub account: String,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
}

impl Session {
    /// Whether the session still holds at `now_ms`.
    pub fn live(&self, now_ms: i64) -> bool {
        let ms = |d: Duration| d.as_millis() as i64;
        now_ms < self.created_at_ms + ms(SESSION_LIFETIME)
            && now_ms < self.last_seen_ms + ms(SESSION_IDLE)
    }

    /// Whether its last-seen time is old enough to be worth writing again
    /// (a write per minute, not per request).
    pub fn stale_by(&self, now_ms: i64) -> bool {
        now_ms - self.last_seen_ms > 60_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(password: &str) -> Account {
        Account {
            name: "a".into(),
            role: Role::Analyst,
            password_hash: hash_password(password).unwrap(),
            disabled: false,
            created_at_ms: 0,
            failed_logins: 0,
            last_failed_ms: None,
            last_login_ms: None,
            region: None,
            totp_sealed: None,
            totp_last_step: None,
        }
    }

    #[test]
    fn a_coordinator_has_a_region_and_an_admin_none() {
        assert!(check_scope(Role::Coordinator, Some("Almaty")).is_ok());
        assert!(matches!(
            check_scope(Role::Coordinator, None),
            Err(AccountError::CoordinatorWithoutRegion)
        ));
        assert!(matches!(
            check_scope(Role::Admin, Some("Almaty")),
            Err(AccountError::AdminWithRegion)
        ));
        assert!(check_scope(Role::Verifier, Some("Almaty")).is_ok());
        assert!(check_scope(Role::Verifier, None).is_ok());
        assert!(check_scope(Role::Analyst, Some(" ")).is_err());
        assert!(check_scope(Role::Analyst, Some("a\nb")).is_err());
        let hash = String::new();
        let c = Account::new(
            "c",
            Role::Coordinator,
            Some("Almaty".into()),
            hash.clone(),
            0,
        )
        .unwrap();
        let v = Account::new("v", Role::Verifier, Some("Almaty".into()), hash.clone(), 0).unwrap();
        let w = Account::new(
            "w",
            Role::Verifier,
            Some("Turkistan".into()),
            hash.clone(),
            0,
        )
        .unwrap();
        let n = Account::new("n", Role::Analyst, None, hash, 0).unwrap();
        assert!(c.covers(Some("Almaty")) && !c.covers(Some("Turkistan")) && !c.covers(None));
        assert!(n.covers(None) && n.covers(Some("Turkistan")));
        assert!(c.manages(&v) && !c.manages(&w) && !c.manages(&n));
        let regional_supervisor = Account::new(
            "s",
            Role::Supervisor,
            Some("Almaty".into()),
            String::new(),
            0,
        )
        .unwrap();
        assert!(regional_supervisor.may(Permission::Enroll));
        assert!(
            !regional_supervisor.may(Permission::PlanDay),
            "the plan is national"
        );
        assert!(!c.may(Permission::ReadAudit) && n.may(Permission::Export));
        assert!(!Role::Coordinator.may(Permission::ReadAudit));
        assert!(Role::Coordinator.may(Permission::Revoke));
        assert!(Role::Coordinator.may(Permission::ManageUsers));
    }

    #[test]
    fn a_password_matches_its_hash_only() {
        let a = account("correct horse battery");
        assert!(
            a.password_hash
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
        assert!(password_matches(Some(&a), "correct horse battery"));
        assert!(!password_matches(Some(&a), "correct horse batterx"));
        assert!(!password_matches(None, "correct horse battery"));
        let disabled = Account {
            disabled: true,
            ..a.clone()
        };
        assert!(!password_matches(Some(&disabled), "correct horse battery"));
        assert_ne!(
            a.password_hash,
            hash_password("correct horse battery").unwrap()
        );
    }

    #[test]
    fn passwords_and_names_are_bounded() {
        assert!(matches!(
            hash_password("short"),
            Err(AccountError::PasswordTooShort)
        ));
        assert!(matches!(
            hash_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(AccountError::PasswordTooLong)
        ));
        assert!(check_name("aigerim.n").is_ok());
        assert!(check_name("Айгерим").is_ok());
        for bad in ["", "a b", "<script>", "a/b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(generate_password().unwrap().len(), 20);
    }

    #[test]
    fn the_wait_doubles_after_five_failures_and_is_capped() {
        let t = 1_000_000;
        assert_eq!(login_wait(4, Some(t), t), None);
        assert_eq!(login_wait(5, Some(t), t), Some(Duration::from_secs(2)));
        assert_eq!(login_wait(6, Some(t), t), Some(Duration::from_secs(4)));
        assert_eq!(login_wait(5, Some(t), t + 2_000), None);
        assert_eq!(
            login_wait(5, Some(t), t + 500),
            Some(Duration::from_millis(1_500))
        );
        assert_eq!(login_wait(40, Some(t), t), Some(MAX_WAIT));
    }

    #[test]
    fn roles_decide_and_refusals_name_who_may() {
        assert!(Role::Admin.may(Permission::Revoke));
        assert!(!Role::Analyst.may(Permission::Revoke));
        assert!(Role::Analyst.may(Permission::Export));
        assert!(Role::Verifier.may(Permission::Review));
        assert!(!Role::Verifier.may(Permission::ManageUsers));
        assert_eq!(
            Role::allowed(Permission::Enroll),
            [Role::Admin, Role::Coordinator, Role::Supervisor]
        );
        assert_eq!("verifier".parse::<Role>().unwrap(), Role::Verifier);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn sessions_expire_by_age_and_by_idleness() {
        let s = Session {
            digest: SessionToken::generate().unwrap().digest(),
            account: "a".into(),
            created_at_ms: 0,
            last_seen_ms: 0,
        };
        assert!(s.live(1));
        assert!(!s.live(SESSION_IDLE.as_millis() as i64));
        let active = Session {
            last_seen_ms: SESSION_LIFETIME.as_millis() as i64 - 1,
            ..s
        };
        assert!(!active.live(SESSION_LIFETIME.as_millis() as i64));
    }

    #[test]
    fn a_csrf_token_belongs_to_its_session() {
        let a = SessionToken::generate().unwrap();
        let b = SessionToken::generate().unwrap();
        assert!(a.csrf_matches(&a.csrf()));
        assert!(!a.csrf_matches(&b.csrf()));
        assert!(!a.csrf_matches(""));
        assert_ne!(a.digest(), b.digest());
    }
}

//! Issuing one-time enrollment codes, from the command line (`enroll`) or
//! the workspace (a supervisor's page): the stations a code names are
//! checked against the registry, the token is stored only as its hash, and
//! the code carries what a phone pins (the certificate's SHA-256 and the
//! coordinator key).

use observer_core::identity::PublicKey;
use observer_core::protocol::EnrollmentCode;
use observer_core::record::Sha256Digest;

use crate::coordinator::{random_token, SetupError};
use crate::storage::{NewToken, Storage};

/// Longest validity a code may be given, in hours (a code is a credential:
/// one left lying around for a year is one an adversary may find).
pub const MAX_VALID_HOURS: u32 = 24 * 30;

/// What every code of a coordinator names besides its token.
#[derive(Clone, Debug)]
pub struct CodeIssuer {
    /// `https://host:port` as phones reach it.
    pub url: String,
    /// SHA-256 of the TLS certificate: what phones pin.
    pub tls_sha256: Sha256Digest,
    /// The key that signs receipts.
    pub coordinator: PublicKey,
    pub org: String,
}

/// Station ids a coordinator names (for a code or an assignment):
/// well-formed, and in the registry when there is one.
pub fn check_stations(storage: &dyn Storage, stations: &[String]) -> Result<(), SetupError> {
    for s in stations {
        observer_core::record::StationId::new(s.clone())
            .map_err(|e| SetupError::Invalid(format!("station {s:?}: {e}")))?;
    }
    let registry = crate::registry::current(storage)?;
    let unknown = crate::registry::unknown(registry.as_ref(), stations);
    if let (Some(r), false) = (&registry, unknown.is_empty()) {
        return Err(SetupError::Invalid(format!(
            "not in the station registry (version {}): {}; check the ids (`observer-server stations list`) or import a registry that holds them",
            r.version.version,
            unknown.join(", ")
        )));
    }
    Ok(())
}

impl CodeIssuer {
    /// A new one-time code for an observer at `stations`, valid for
    /// `valid_hours` (at most [`MAX_VALID_HOURS`]; 0 makes a code that has
    /// expired, for drills).
    pub fn issue(
        &self,
        storage: &dyn Storage,
        stations: &[String],
        name: Option<&str>,
        valid_hours: u32,
        now_ms: i64,
    ) -> Result<EnrollmentCode, SetupError> {
        if stations.is_empty() {
            return Err(SetupError::Invalid("name at least one station".into()));
        }
        if valid_hours > MAX_VALID_HOURS {
            return Err(SetupError::Invalid(format!(
                "a code is valid for at most {MAX_VALID_HOURS} hours"
            )));
        }
        check_stations(storage, stations)?;
        let token = random_token();
        storage.add_token(
            &NewToken {
                hash: Sha256Digest::of(token.as_bytes()),
                stations: stations.to_vec(),
                name: name.map(str::to_string),
                expires_at_ms: now_ms + i64::from(valid_hours) * 3_600_000,
            },
            now_ms,
        )?;
        Ok(EnrollmentCode {
            url: self.url.clone(),
            tls_sha256: self.tls_sha256,
            coordinator: self.coordinator,
            org: self.org.clone(),
            token,
        })
    }
}

//! Issuing one-time enrollment codes, from the command line (`enroll`) or
//! the workspace (a supervisor's page): the stations a code names are
//! checked against the registry, the token is stored only as its hash, and
//! the code carries what a phone pins (the certificate's SHA-256 and the
//! coordinator key).

use observer_core::identity::PublicKey;
use observer_core::protocol::EnrollmentCode;
use observer_core::record::Sha256Digest;

use crate::coordinator::{SetupError, random_token};
use crate::i18n::Texts;
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

/// Why a code (or an assignment) cannot name these stations, or be
/// issued so: typed, so that the command line says it in English and the
/// workspace in its reader's language.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeProblem {
    #[error("name at least one station")]
    NoStation,
    #[error("a code is valid for at most {MAX_VALID_HOURS} hours")]
    TooLong,
    #[error("station {station:?}: {reason}")]
    BadStation { station: String, reason: String },
    #[error(
        "not in the station registry (version {version}): {}; check the ids (`observer-server stations list`) or import a registry that holds them",
        .stations.join(", ")
    )]
    NotInRegistry { version: u32, stations: Vec<String> },
}

impl CodeProblem {
    /// The refusal in the workspace's language.
    pub fn text(&self, t: &Texts) -> String {
        match self {
            CodeProblem::NoStation => t.get("code-no-station"),
            CodeProblem::TooLong => t.arg("code-too-long", "hours", MAX_VALID_HOURS),
            CodeProblem::BadStation { station, .. } => {
                t.arg("code-bad-station", "station", station)
            }
            CodeProblem::NotInRegistry { stations, .. } => {
                t.arg("code-not-in-registry", "stations", stations.join(", "))
            }
        }
    }
}

/// Station ids a coordinator names (for a code or an assignment):
/// well-formed, and in the registry when there is one.
pub fn check_stations(storage: &dyn Storage, stations: &[String]) -> Result<(), SetupError> {
    for s in stations {
        observer_core::record::StationId::new(s.clone()).map_err(|e| CodeProblem::BadStation {
            station: s.clone(),
            reason: e.to_string(),
        })?;
    }
    let registry = crate::registry::current(storage)?;
    let unknown = crate::registry::unknown(registry.as_ref(), stations);
    if let (Some(r), false) = (&registry, unknown.is_empty()) {
        return Err(CodeProblem::NotInRegistry {
            version: r.version.version,
            stations: unknown.into_iter().map(str::to_string).collect(),
        }
        .into());
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
            return Err(CodeProblem::NoStation.into());
        }
        if valid_hours > MAX_VALID_HOURS {
            return Err(CodeProblem::TooLong.into());
        }
        check_stations(storage, stations)?;
        self.store(storage, stations, name, valid_hours, now_ms)
    }

    /// A code for stations already checked.
    fn store(
        &self,
        storage: &dyn Storage,
        stations: &[String],
        name: Option<&str>,
        valid_hours: u32,
        now_ms: i64,
    ) -> Result<EnrollmentCode, SetupError> {
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
            sms: crate::sms::GatewaySettings::load(storage)
                .ok()
                .flatten()
                .and_then(|s| s.number),
        })
    }
}

/// Observers one batch may hold (a training day's worth; more is a file
/// that is not what the supervisor meant).
pub const MAX_BATCH: usize = 1000;

/// Longest observer name in a batch, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// One observer of a batch: the line it came from, the name, the stations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchLine {
    pub line: usize,
    pub name: String,
    pub stations: Vec<String>,
}

/// A batch that cannot be issued, each bad line named (nothing is issued).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("no observer in the list")]
    Empty,
    #[error("more than {MAX_BATCH} observers in one batch")]
    TooMany,
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Lines(Vec<LineProblem>),
    /// The registry could not be read.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// What is wrong with one line of a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {fault}")]
pub struct LineProblem {
    pub line: usize,
    pub fault: LineFault,
}

/// The fault of a [`LineProblem`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineFault {
    #[error("{0}")]
    Unreadable(String),
    #[error("a name of 1 to {MAX_NAME_CHARS} characters first")]
    BadName,
    #[error("no station for {0}")]
    NoStation(String),
    #[error("station {station:?}: {reason}")]
    BadStation { station: String, reason: String },
    #[error("not in the station registry: {}", .0.join(", "))]
    NotInRegistry(Vec<String>),
}

impl BatchError {
    /// The refusal in the workspace's language, one line per problem.
    pub fn text(&self, t: &Texts) -> String {
        match self {
            BatchError::Empty => t.get("batch-empty"),
            BatchError::TooMany => t.arg("batch-too-many", "max", MAX_BATCH),
            BatchError::Storage(_) => t.get("err-internal"),
            BatchError::Lines(lines) => lines
                .iter()
                .map(|l| {
                    let fault = match &l.fault {
                        LineFault::Unreadable(_) => t.get("batch-unreadable"),
                        LineFault::BadName => t.arg("batch-bad-name", "max", MAX_NAME_CHARS),
                        LineFault::NoStation(name) => t.arg("batch-no-station", "name", name),
                        LineFault::BadStation { station, .. } => {
                            t.arg("code-bad-station", "station", station)
                        }
                        LineFault::NotInRegistry(s) => {
                            t.arg("code-not-in-registry", "stations", s.join(", "))
                        }
                    };
                    t.arg2("batch-line", "line", l.line, "problem", fault)
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// Reads a batch: CSV (commas, or semicolons as spreadsheets in Kazakh and
/// Russian locales write them), one observer a line, the name first and
/// then the stations (in further cells, or in one cell separated by spaces);
/// a first line naming the columns is skipped. Every station is checked
/// against the registry once for the whole batch.
pub fn parse_batch(storage: &dyn Storage, text: &str) -> Result<Vec<BatchLine>, BatchError> {
    let first = text.lines().next().unwrap_or_default();
    let delimiter = if first.matches(';').count() > first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let line = i + 1;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                problems.push(LineProblem {
                    line,
                    fault: LineFault::Unreadable(e.to_string()),
                });
                continue;
            }
        };
        let cells: Vec<&str> = row.iter().map(str::trim).collect();
        if cells.iter().all(|c| c.is_empty()) {
            continue;
        }
        let name = cells[0].to_string();
        if line == 1 && ["name", "observer", "имя", "аты"].contains(&name.to_lowercase().as_str())
        {
            continue;
        }
        let stations: Vec<String> = cells[1..]
            .iter()
            .flat_map(|c| c.split_whitespace())
            .map(str::to_string)
            .collect();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            problems.push(LineProblem {
                line,
                fault: LineFault::BadName,
            });
        } else if stations.is_empty() {
            problems.push(LineProblem {
                line,
                fault: LineFault::NoStation(name),
            });
        } else {
            lines.push(BatchLine {
                line,
                name,
                stations,
            });
        }
        if lines.len() + problems.len() > MAX_BATCH {
            return Err(BatchError::TooMany);
        }
    }
    let registry = crate::registry::current(storage)?;
    for l in &lines {
        for s in &l.stations {
            if let Err(e) = observer_core::record::StationId::new(s.clone()) {
                problems.push(LineProblem {
                    line: l.line,
                    fault: LineFault::BadStation {
                        station: s.clone(),
                        reason: e.to_string(),
                    },
                });
            }
        }
        let unknown = crate::registry::unknown(registry.as_ref(), &l.stations);
        if !unknown.is_empty() {
            problems.push(LineProblem {
                line: l.line,
                fault: LineFault::NotInRegistry(unknown.into_iter().map(str::to_string).collect()),
            });
        }
    }
    if !problems.is_empty() {
        problems.truncate(50);
        return Err(BatchError::Lines(problems));
    }
    if lines.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(lines)
}

impl CodeIssuer {
    /// One code per line of a batch [`parse_batch`] accepted.
    pub fn issue_batch(
        &self,
        storage: &dyn Storage,
        batch: &[BatchLine],
        valid_hours: u32,
        now_ms: i64,
    ) -> Result<Vec<EnrollmentCode>, SetupError> {
        if valid_hours > MAX_VALID_HOURS {
            return Err(CodeProblem::TooLong.into());
        }
        batch
            .iter()
            .map(|l| self.store(storage, &l.stations, Some(&l.name), valid_hours, now_ms))
            .collect()
    }
}

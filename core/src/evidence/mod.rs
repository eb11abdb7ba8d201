//! The evidence package (`docs/evidence.md`): what a coordinator hands a
//! court, a mission or a journalist so that they can check, without
//! trusting the coordinator or its server, that each record was signed by
//! an enrolled device, was not altered, and is in the coordinator's log
//! under a signed (and, where witnesses cosigned it, witnessed)
//! checkpoint.
//!
//! A package is a set of named files (a ZIP archive on disk; reading and
//! writing the archive is the binaries' job, so that this module holds no
//! file-format code of its own). [`layout`] names the files and their
//! JSON; [`verify()`] checks a package and says what held and what did not.
//! Everything here builds without the phone's store: the outside verifier
//! uses it with no database and no network code.

pub mod audit;
pub mod layout;
mod verify;

pub use layout::{
    CHECKPOINT_FILE, DeviceFile, FORMAT, MANIFEST_FILE, Manifest, MediaEntry, PVT_COMMITMENTS_FILE,
    PVT_SAMPLE_FILE, RecordFile, WITNESSED_FILE, Witnessed,
};
pub use verify::{Finding, RecordTime, Report, Trust, verify};

use std::collections::BTreeMap;

/// A package's files by name (paths inside the archive, `/`-separated).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Package {
    /// The files.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Most files a package may hold (the verifier refuses more before it
/// reads them).
pub const MAX_FILES: usize = 2_000_000;

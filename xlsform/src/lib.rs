//! XLSForm (the spreadsheet format of ODK, KoboToolbox and SurveyCTO) in
//! and out of Observer form definitions, so a coordinator can publish the
//! checklist their trainers already wrote. See `docs/forms.md` for what is
//! supported and how each construct maps.
//!
//! ```no_run
//! let bytes = std::fs::read("counting.xlsx").unwrap();
//! let imported = observer_xlsform::import(&bytes, "counting").unwrap();
//! for w in &imported.warnings {
//!     eprintln!("warning: {w}");
//! }
//! let again = observer_xlsform::export(&imported.form).unwrap();
//! assert_eq!(observer_xlsform::import(&again, "counting").unwrap().form, imported.form);
//! ```

mod export;
mod import;
mod workbook;
pub mod xpath;

use observer_core::forms::{FormDefinition, FormError};

pub use export::{ExportError, export};
pub use import::import;
pub use workbook::{MAX_ROWS, MAX_WORKBOOK_BYTES};

/// A form read from a workbook, with what the coordinator should look at.
#[derive(Debug)]
pub struct Imported {
    pub form: FormDefinition,
    pub warnings: Vec<Warning>,
}

/// Something imported that deserves a look but does not stop the import
/// (a missing translation, a column Observer does not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub sheet: String,
    pub row: Option<u32>,
    pub detail: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.row {
            Some(r) => write!(f, "{} row {r}: {}", self.sheet, self.detail),
            None => write!(f, "{}: {}", self.sheet, self.detail),
        }
    }
}

/// Why a workbook was refused. Every cell error names the sheet, the row
/// and the column.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a readable .xlsx workbook: {0}")]
    Workbook(String),
    #[error("the workbook is {bytes} bytes, over the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("the workbook has no {0:?} sheet")]
    MissingSheet(&'static str),
    #[error("{sheet} row {row}{}: {detail}", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
    At {
        sheet: String,
        row: u32,
        column: Option<String>,
        detail: String,
    },
    #[error("the group {0:?} is never ended (`end group`)")]
    Unclosed(String),
    /// The converted definition failed the phones' own checks (a loop
    /// between conditions, say), with the survey rows of the questions it
    /// names.
    #[error("{}the converted form was refused: {error}", rows_prefix(rows))]
    Form { rows: Vec<u32>, error: FormError },
}

fn rows_prefix(rows: &[u32]) -> String {
    match rows {
        [] => String::new(),
        [r] => format!("survey row {r}: "),
        rows => format!(
            "survey rows {}: ",
            rows.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

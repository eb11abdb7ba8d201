//! The sheets of a workbook as rows of text under named columns, with
//! XLSForm's translated columns (`label::Kazakh (kk)`) split into a base
//! name and a language code.

use std::collections::BTreeMap;
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};

use crate::ImportError;

/// Largest workbook read, in bytes.
pub const MAX_WORKBOOK_BYTES: usize = 10 * 1024 * 1024;
/// Most rows read from one sheet.
pub const MAX_ROWS: usize = 20_000;

/// Language names XLSForm authors write without a code.
const KNOWN_LANGUAGES: &[(&str, &str)] = &[
    ("english", "en"),
    ("russian", "ru"),
    ("kazakh", "kk"),
    ("қазақша", "kk"),
    ("русский", "ru"),
];

/// The name XLSForm gives a language in column headers.
pub fn language_name(code: &str) -> String {
    let name = match code {
        "en" => "English",
        "ru" => "Russian",
        "kk" => "Kazakh",
        other => other,
    };
    format!("{name} ({code})")
}

/// The code of a language as XLSForm writes it: `Kazakh (kk)`, or a bare
/// name Observer knows, or a bare code.
pub fn language_code(name: &str) -> Option<String> {
    let name = name.trim();
    if let Some(open) = name.rfind('(')
        && let Some(code) = name[open + 1..].strip_suffix(')')
    {
        let code = code.trim();
        return is_code(code).then(|| code.to_ascii_lowercase());
    }
    let lower = name.to_lowercase();
    KNOWN_LANGUAGES
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, c)| c.to_string())
        .or_else(|| is_code(&lower).then_some(lower))
}

fn is_code(c: &str) -> bool {
    (2..=8).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')
}

/// A column: its header, and the base name and language it splits into.
#[derive(Debug)]
pub struct Column {
    pub header: String,
    pub base: String,
    /// `None` for an untranslated column (`label`).
    pub lang: Option<String>,
}

/// One row: its number as the spreadsheet shows it, and its cells.
#[derive(Debug)]
pub struct Row {
    pub number: u32,
    cells: Vec<String>,
}

impl Row {
    /// A row with no cells (a sheet's missing first data row).
    pub fn empty() -> Self {
        Self {
            number: 2,
            cells: Vec::new(),
        }
    }
}

/// A sheet read into text.
#[derive(Debug)]
pub struct Sheet {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

impl Sheet {
    /// The error for a cell (or a row, without a column).
    pub fn at(&self, row: &Row, column: Option<&str>, detail: impl Into<String>) -> ImportError {
        ImportError::At {
            sheet: self.name.clone(),
            row: row.number,
            column: column.map(str::to_string),
            detail: detail.into(),
        }
    }

    /// A warning about a row.
    pub fn warning(&self, row: &Row, detail: impl Into<String>) -> crate::Warning {
        crate::Warning {
            sheet: self.name.clone(),
            row: Some(row.number),
            detail: detail.into(),
        }
    }

    /// The trimmed text of an untranslated column (empty if absent).
    pub fn get<'r>(&self, row: &'r Row, base: &str) -> &'r str {
        self.columns
            .iter()
            .position(|c| c.base == base && c.lang.is_none())
            .and_then(|i| row.cells.get(i))
            .map_or("", |s| s.trim())
    }

    /// The texts of a translatable column by language; the untranslated
    /// column counts as `default_lang`.
    pub fn texts(&self, row: &Row, base: &str, default_lang: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (i, c) in self.columns.iter().enumerate() {
            let text = row.cells.get(i).map_or("", |s| s.trim());
            if c.base != base || text.is_empty() {
                continue;
            }
            match &c.lang {
                Some(lang) => {
                    out.insert(lang.clone(), text.to_string());
                }
                None => {
                    out.entry(default_lang.to_string())
                        .or_insert_with(|| text.to_string());
                }
            }
        }
        out
    }

    /// The columns with a value in this row that none of `known` names.
    pub fn unknown<'s>(&'s self, row: &Row, known: &[&str]) -> Vec<&'s str> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                !known.contains(&c.base.as_str())
                    && row.cells.get(*i).is_some_and(|s| !s.trim().is_empty())
            })
            .map(|(_, c)| c.header.as_str())
            .collect()
    }

    /// Every language that a column of this sheet is translated into.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().filter_map(|c| c.lang.as_deref())
    }
}

/// A workbook's sheets by lower-case name.
pub struct Workbook {
    sheets: BTreeMap<String, Sheet>,
}

fn text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        other => other.to_string(),
    }
}

impl Workbook {
    /// Reads every sheet of an `.xlsx` file.
    pub fn read(bytes: &[u8]) -> Result<Self, ImportError> {
        if bytes.len() > MAX_WORKBOOK_BYTES {
            return Err(ImportError::TooLarge {
                bytes: bytes.len(),
                limit: MAX_WORKBOOK_BYTES,
            });
        }
        let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
            .map_err(|e: calamine::XlsxError| ImportError::Workbook(e.to_string()))?;
        let mut sheets = BTreeMap::new();
        for name in book.sheet_names() {
            let range = book
                .worksheet_range(&name)
                .map_err(|e| ImportError::Workbook(format!("sheet {name:?}: {e}")))?;
            let first_row = range.start().map_or(0, |(r, _)| r);
            let mut rows = range.rows();
            let Some(header) = rows.next() else {
                continue;
            };
            let mut columns = Vec::new();
            for h in header {
                let header = text(h).trim().to_string();
                let (base, lang) = match header.split_once("::") {
                    None => (header.clone(), None),
                    Some((base, lang)) => {
                        let code = language_code(lang).ok_or_else(|| ImportError::At {
                            sheet: name.clone(),
                            row: first_row + 1,
                            column: Some(header.clone()),
                            detail: format!(
                                "the language {lang:?} needs its code in parentheses, as in \"Kazakh (kk)\""
                            ),
                        })?;
                        (base.trim().to_string(), Some(code))
                    }
                };
                columns.push(Column { header, base, lang });
            }
            let mut out = Vec::new();
            for (i, cells) in rows.enumerate() {
                if i >= MAX_ROWS {
                    return Err(ImportError::Workbook(format!(
                        "sheet {name:?} has more than {MAX_ROWS} rows"
                    )));
                }
                let cells: Vec<String> = cells.iter().map(text).collect();
                if cells.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                out.push(Row {
                    number: first_row + i as u32 + 2,
                    cells,
                });
            }
            sheets.insert(
                name.to_lowercase(),
                Sheet {
                    name: name.to_lowercase(),
                    columns,
                    rows: out,
                },
            );
        }
        Ok(Self { sheets })
    }

    /// The sheet of this (lower-case) name.
    pub fn take(&mut self, name: &str) -> Option<Sheet> {
        self.sheets.remove(name)
    }

    /// The names of the sheets not taken.
    pub fn rest(&self) -> impl Iterator<Item = &str> {
        self.sheets.keys().map(String::as_str)
    }
}

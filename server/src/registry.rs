//! The station registry: every polling station the coordinator plans to
//! observe, with its region, district, address and registered voters,
//! imported from the election commission's list as CSV.
//!
//! Regions and districts come from here, not from the official results
//! (which the authorities publish after the fact, in their own words).
//! Each import is a new **version**: the whole list, never an edit of the
//! previous one, so what the registry said on any day stays readable and
//! its digest can be committed to (the quick-count sample of issue 17
//! names the version it was drawn from). A file with any bad line is
//! refused whole, each bad line named with its number and reason.
//!
//! Decisions only: reading and checking a file, the digest, the changes
//! between two versions. Storing is [`crate::storage::Storage`]'s.

use std::collections::BTreeMap;

use observer_core::record::{Sha256Digest, StationId};
use serde::{Deserialize, Serialize};

use crate::storage::{Storage, StorageError};

/// Most bytes a registry file may have (100,000 stations of 600 bytes).
pub const MAX_REGISTRY_BYTES: usize = 64 * 1024 * 1024;

/// Most stations one registry may hold.
pub const MAX_STATIONS: usize = 250_000;

/// Longest name, region, district or address, in characters.
pub const MAX_TEXT_CHARS: usize = 300;

/// Most registered voters one station may have (the largest stations
/// abroad have tens of thousands; this catches a misplaced column).
pub const MAX_REGISTERED_VOTERS: u64 = 1_000_000;

/// Bad lines reported at most (past this the file is clearly not a
/// registry, and the rest would only bury the first).
const MAX_REPORTED: usize = 50;

/// One polling station.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Station {
    pub id: String,
    pub name: String,
    pub region: String,
    pub district: String,
    pub address: String,
    pub registered_voters: u64,
    /// Where it is, when the list says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// Latitude and longitude in degrees (WGS 84).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
}

/// One line of the file that cannot be imported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BadLine {
    /// Its line number in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

/// Why a registry file was refused. Nothing of it was imported.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("the file is over {MAX_REGISTRY_BYTES} bytes")]
    TooLarge,
    #[error("the file holds no stations (only a header, or nothing)")]
    Empty,
    #[error("the file has more than {MAX_STATIONS} stations")]
    TooMany,
    #[error("the header (line 1) cannot be read: {0}")]
    Header(String),
    #[error("the header (line 1) lacks the column{} {}; a registry needs {}",
        if .0.len() == 1 { "" } else { "s" },
        .0.join(", "),
        REQUIRED.join(", "))]
    MissingColumns(Vec<&'static str>),
    #[error("the header (line 1) names the column {0:?} twice")]
    DuplicateColumn(String),
    #[error("{} bad line{} (nothing was imported):\n{}",
        .0.len(),
        if .0.len() == 1 { "" } else { "s" },
        .0.iter().map(|b| format!("  line {}: {}", b.line, b.reason)).collect::<Vec<_>>().join("\n"))]
    BadLines(Vec<BadLine>),
}

/// The columns every registry has, by name, in any order.
pub const REQUIRED: [&str; 6] = [
    "station",
    "name",
    "region",
    "district",
    "address",
    "registered_voters",
];

/// The columns it may have.
pub const OPTIONAL: [&str; 2] = ["latitude", "longitude"];

/// A file read and checked.
#[derive(Debug)]
pub struct Parsed {
    /// Sorted by id.
    pub stations: Vec<Station>,
    /// Columns of the file that are not registry columns (kept out, and
    /// named so that a misspelt optional column is noticed).
    pub ignored_columns: Vec<String>,
}

/// Reads a registry: UTF-8 CSV (a byte-order mark as spreadsheets write it
/// is allowed), comma- or semicolon-separated (as spreadsheets in Russian
/// and Kazakh locales write it), a header naming the columns.
pub fn parse(bytes: &[u8]) -> Result<Parsed, RegistryError> {
    if bytes.len() > MAX_REGISTRY_BYTES {
        return Err(RegistryError::TooLarge);
    }
    let mut rd = spreadsheet_csv(bytes);
    let headers = rd
        .byte_headers()
        .map_err(|e| RegistryError::Header(e.to_string()))?
        .clone();
    let mut columns: BTreeMap<String, usize> = BTreeMap::new();
    let mut ignored_columns = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let name = std::str::from_utf8(h)
            .map_err(|_| RegistryError::Header("it is not UTF-8 text".into()))?
            .trim()
            .to_lowercase();
        if !REQUIRED.contains(&name.as_str()) && !OPTIONAL.contains(&name.as_str()) {
            ignored_columns.push(name);
            continue;
        }
        if columns.insert(name.clone(), i).is_some() {
            return Err(RegistryError::DuplicateColumn(name));
        }
    }
    let missing: Vec<&'static str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| !columns.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        return Err(RegistryError::MissingColumns(missing));
    }
    let col = |name: &str| columns.get(name).copied();
    let mut stations = Vec::new();
    let mut bad = Vec::new();
    let mut first_seen: BTreeMap<String, u64> = BTreeMap::new();
    for rec in rd.byte_records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                bad.push(BadLine {
                    line,
                    reason: e.to_string(),
                });
                if bad.len() >= MAX_REPORTED {
                    break;
                }
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue; // a blank line, as spreadsheets leave at the end
        }
        if stations.len() >= MAX_STATIONS {
            return Err(RegistryError::TooMany);
        }
        match station(&rec, &col) {
            Ok(s) => {
                if let Some(earlier) = first_seen.get(&s.id) {
                    bad.push(BadLine {
                        line,
                        reason: format!("station {:?} is already on line {earlier}", s.id),
                    });
                } else {
                    first_seen.insert(s.id.clone(), line);
                    stations.push(s);
                }
            }
            Err(reason) => bad.push(BadLine { line, reason }),
        }
        if bad.len() >= MAX_REPORTED {
            break;
        }
    }
    if !bad.is_empty() {
        return Err(RegistryError::BadLines(bad));
    }
    if stations.is_empty() {
        return Err(RegistryError::Empty);
    }
    stations.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Parsed {
        stations,
        ignored_columns,
    })
}

/// One line's station, or the reason it is not one.
fn station(rec: &csv::ByteRecord, col: &dyn Fn(&str) -> Option<usize>) -> Result<Station, String> {
    let cell = |name: &str| -> Result<String, String> {
        let raw = col(name).and_then(|i| rec.get(i)).unwrap_or_default();
        let text = std::str::from_utf8(raw).map_err(|_| format!("{name} is not UTF-8 text"))?;
        // Line breaks and tabs inside a cell (a spreadsheet's Alt+Enter)
        // become single spaces; any other control character is refused.
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.chars().any(char::is_control) {
            return Err(format!("{name} holds a control character"));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(format!("{name} is longer than {MAX_TEXT_CHARS} characters"));
        }
        Ok(text)
    };
    let required = |name: &str| -> Result<String, String> {
        let v = cell(name)?;
        if v.is_empty() {
            return Err(format!("{name} is empty"));
        }
        Ok(v)
    };
    let id = required("station")?;
    StationId::new(id.clone()).map_err(|e| format!("station {id:?}: {e}"))?;
    let voters = required("registered_voters")?;
    let registered_voters: u64 = voters
        .parse()
        .map_err(|_| format!("registered_voters {voters:?} is not a whole number"))?;
    if registered_voters > MAX_REGISTERED_VOTERS {
        return Err(format!(
            "registered_voters {registered_voters} is over {MAX_REGISTERED_VOTERS}"
        ));
    }
    let degrees = |name: &str, limit: f64| -> Result<Option<f64>, String> {
        let v = cell(name)?;
        if v.is_empty() {
            return Ok(None);
        }
        let d: f64 = v
            .replace(',', ".")
            .parse()
            .map_err(|_| format!("{name} {v:?} is not a number"))?;
        if !d.is_finite() || d.abs() > limit {
            return Err(format!("{name} {v} is not between -{limit} and {limit}"));
        }
        Ok(Some(d))
    };
    let location = match (degrees("latitude", 90.0)?, degrees("longitude", 180.0)?) {
        (Some(latitude), Some(longitude)) => Some(Location {
            latitude,
            longitude,
        }),
        (None, None) => None,
        _ => return Err("latitude and longitude go together: one is missing".into()),
    };
    Ok(Station {
        id,
        name: required("name")?,
        region: required("region")?,
        district: required("district")?,
        address: required("address")?,
        registered_voters,
        location,
    })
}

/// The digest of a registry: SHA-256 over each station as one line of
/// JSON (`serde_json` of [`Station`], fields in declaration order, no
/// spaces), sorted by id, each line ending in `\n`. Anyone holding the
/// list can recompute it (`docs/protocol.md`).
pub fn digest(stations: &[Station]) -> Sha256Digest {
    let mut sorted: Vec<&Station> = stations.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut text = Vec::new();
    for s in sorted {
        serde_json::to_writer(&mut text, s).expect("a station serialises");
        text.push(b'\n');
    }
    Sha256Digest::of(&text)
}

/// What changed from one version to the next.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Stations whose fields changed, with the fields' names.
    pub changed: Vec<(String, Vec<&'static str>)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The changes from `old` to `new`.
pub fn changes(old: &[Station], new: &[Station]) -> Changes {
    let before: BTreeMap<&str, &Station> = old.iter().map(|s| (s.id.as_str(), s)).collect();
    let after: BTreeMap<&str, &Station> = new.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut out = Changes::default();
    for (id, s) in &after {
        match before.get(id) {
            None => out.added.push(id.to_string()),
            Some(b) => {
                let mut fields = Vec::new();
                if b.name != s.name {
                    fields.push("name");
                }
                if b.region != s.region {
                    fields.push("region");
                }
                if b.district != s.district {
                    fields.push("district");
                }
                if b.address != s.address {
                    fields.push("address");
                }
                if b.registered_voters != s.registered_voters {
                    fields.push("registered_voters");
                }
                if b.location != s.location {
                    fields.push("location");
                }
                if !fields.is_empty() {
                    out.changed.push((id.to_string(), fields));
                }
            }
        }
    }
    out.removed = before
        .keys()
        .filter(|id| !after.contains_key(*id))
        .map(|id| id.to_string())
        .collect();
    out
}

/// One imported version of the registry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegistryVersion {
    /// 1 for the first import, then one more per import that changed it.
    pub version: u32,
    pub imported_at_ms: i64,
    /// [`digest`] of its stations.
    pub digest: Sha256Digest,
    pub stations: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
}

/// A CSV reader for a file as a spreadsheet saves it: a byte-order mark
/// dropped, `;` between cells when the header has `;` and no `,` (as under
/// Kazakh and Russian settings, where `,` is the decimal mark), and rows of
/// any length, so that the caller names a short row by its line.
pub fn spreadsheet_csv(bytes: &[u8]) -> csv::Reader<&[u8]> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let delimiter = if !first_line.contains(&b',') && first_line.contains(&b';') {
        b';'
    } else {
        b','
    };
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(bytes)
}

/// The newest registry version with its stations, read once for a
/// listing or a check.
#[derive(Debug)]
pub struct Current {
    pub version: RegistryVersion,
    pub stations: BTreeMap<String, Station>,
}

impl Current {
    /// The registry a first import of `stations` makes, held in memory
    /// (a test's or a benchmark's country).
    pub fn first_version(stations: Vec<Station>) -> Self {
        let n = stations.len() as u64;
        Current {
            version: RegistryVersion {
                version: 1,
                imported_at_ms: 0,
                digest: digest(&stations),
                stations: n,
                added: n,
                changed: 0,
                removed: 0,
            },
            stations: stations.into_iter().map(|s| (s.id.clone(), s)).collect(),
        }
    }

    /// The station `id`, when the registry holds it.
    pub fn get(&self, id: &str) -> Option<&Station> {
        self.stations.get(id)
    }

    /// The region of station `id`, when the registry holds it.
    pub fn region_of(&self, id: &str) -> Option<&str> {
        self.get(id).map(|s| s.region.as_str())
    }

    /// Whether any station is in `region`.
    pub fn has_region(&self, region: &str) -> bool {
        self.stations.values().any(|s| s.region == region)
    }

    /// Every region, sorted, once each.
    pub fn regions(&self) -> Vec<String> {
        let mut all: Vec<String> = self.stations.values().map(|s| s.region.clone()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// The newest registry, if one was imported.
pub fn current(storage: &dyn Storage) -> Result<Option<Current>, StorageError> {
    let Some(version) = storage.registry_versions()?.pop() else {
        return Ok(None);
    };
    let stations = storage
        .registry_stations(version.version)?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    Ok(Some(Current { version, stations }))
}

/// The stations of `named` that the registry does not hold. Without a
/// registry every station is accepted: a small group on a laptop may work
/// without one, and its stations are whatever its codes name.
pub fn unknown<'a>(registry: Option<&Current>, named: &'a [String]) -> Vec<&'a str> {
    match registry {
        None => Vec::new(),
        Some(r) => named
            .iter()
            .filter(|s| r.get(s).is_none())
            .map(String::as_str)
            .collect(),
    }
}

/// Whether a record's station is in the registry: `None` without one.
pub fn holds(registry: Option<&Current>, station: &str) -> Option<bool> {
    registry.map(|r| r.get(station).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "station,name,region,district,address,registered_voters,latitude,longitude\n";

    fn parse_str(s: &str) -> Result<Parsed, RegistryError> {
        parse(s.as_bytes())
    }

    #[test]
    fn a_good_file_is_read_sorted_with_its_locations() {
        let p = parse_str(&format!(
            "{HEADER}KZ-0002,School 2,Almaty,Medeu,\"Abay 1, Almaty\",1500,43.25,76.95\nKZ-0001,Школа № 1,Алматы,Бостандык,Абая 10,2100,,\n"
        ))
        .unwrap();
        assert_eq!(p.stations.len(), 2);
        assert_eq!(p.stations[0].id, "KZ-0001");
        assert_eq!(p.stations[0].name, "Школа № 1");
        assert_eq!(p.stations[0].location, None);
        assert_eq!(p.stations[1].address, "Abay 1, Almaty");
        assert_eq!(
            p.stations[1].location,
            Some(Location {
                latitude: 43.25,
                longitude: 76.95
            })
        );
        assert!(p.ignored_columns.is_empty());
    }

    #[test]
    fn spreadsheet_exports_with_a_bom_and_semicolons_are_read() {
        let p = parse(
            "\u{feff}Station;Name;Region;District;Address;Registered_Voters;Latitude;Longitude;Notes\nKZ-1;A;R;D;Addr;10;43,2;76,9;x\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(p.stations[0].location.unwrap().latitude, 43.2);
        assert_eq!(p.ignored_columns, vec!["notes".to_string()]);
    }

    #[test]
    fn every_bad_line_is_named_with_its_number_and_reason() {
        let e = parse_str(&format!(
            "{HEADER}KZ-1,A,R,D,Addr,10,,\nKZ-2,,R,D,Addr,10,,\nKZ-1,B,R,D,Addr,10,,\nKZ-3,C,R,D,Addr,many,,\nKZ-4,C,R,D,Addr,5,91,10\nKZ-5,C,R,D,Addr,5,40,\n{long},C,R,D,Addr,5,,\n",
            long = "X".repeat(70)
        ))
        .unwrap_err();
        let RegistryError::BadLines(lines) = &e else {
            panic!("{e}")
        };
        let got: Vec<(u64, &str)> = lines.iter().map(|b| (b.line, b.reason.as_str())).collect();
        assert_eq!(got[0], (3, "name is empty"));
        assert_eq!(got[1], (4, "station \"KZ-1\" is already on line 2"));
        assert_eq!(
            got[2],
            (5, "registered_voters \"many\" is not a whole number")
        );
        assert_eq!(got[3], (6, "latitude 91 is not between -90 and 90"));
        assert_eq!(
            got[4],
            (7, "latitude and longitude go together: one is missing")
        );
        assert_eq!(got[5].0, 8);
        assert!(got[5].1.ends_with("it is over 64 bytes"), "{}", got[5].1);
        assert_eq!(lines.len(), 6);
        assert!(e.to_string().contains("line 5: registered_voters"), "{e}");
    }

    #[test]
    fn quoted_newlines_keep_the_line_numbers_true() {
        let e = parse_str(&format!(
            "{HEADER}KZ-1,A,R,D,\"two\nlines\",10,,\nKZ-2,B,R,D,Addr,x,,\n"
        ))
        .unwrap_err();
        let RegistryError::BadLines(lines) = e else {
            panic!()
        };
        assert_eq!(lines[0].line, 4);
    }

    #[test]
    fn missing_columns_and_empty_files_are_refused() {
        let e = parse_str("station,name,region\nKZ-1,A,R\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("lacks the columns district, address, registered_voters"),
            "{e}"
        );
        assert!(matches!(parse_str(HEADER), Err(RegistryError::Empty)));
        assert!(matches!(
            parse_str(""),
            Err(RegistryError::MissingColumns(_))
        ));
        assert!(matches!(
            parse_str("station,name,name,region,district,address,registered_voters\n"),
            Err(RegistryError::DuplicateColumn(_))
        ));
    }

    #[test]
    fn markup_and_control_characters_are_text_or_refused() {
        let p = parse_str(&format!(
            "{HEADER}KZ-1,<script>alert(1)</script>,R,D,A,1,,\n"
        ))
        .unwrap();
        assert_eq!(p.stations[0].name, "<script>alert(1)</script>");
        let e = parse_str(&format!("{HEADER}KZ-1,A\u{7},R,D,A,1,,\n")).unwrap_err();
        assert!(e.to_string().contains("control character"), "{e}");
    }

    #[test]
    fn the_digest_ignores_order_and_sees_every_field() {
        let p = parse_str(&format!(
            "{HEADER}KZ-1,A,R,D,Addr,10,,\nKZ-2,B,R,D,Addr,20,,\n"
        ))
        .unwrap();
        let mut reversed = p.stations.clone();
        reversed.reverse();
        assert_eq!(digest(&p.stations), digest(&reversed));
        let mut changed = p.stations.clone();
        changed[1].registered_voters = 21;
        assert_ne!(digest(&p.stations), digest(&changed));
    }

    #[test]
    fn changes_list_what_was_added_removed_and_edited() {
        let old = parse_str(&format!(
            "{HEADER}KZ-1,A,R,D,Addr,10,,\nKZ-2,B,R,D,Addr,20,,\n"
        ))
        .unwrap()
        .stations;
        let new = parse_str(&format!(
            "{HEADER}KZ-2,B,R2,D,Addr,25,,\nKZ-3,C,R,D,Addr,30,,\n"
        ))
        .unwrap()
        .stations;
        let c = changes(&old, &new);
        assert_eq!(c.added, vec!["KZ-3"]);
        assert_eq!(c.removed, vec!["KZ-1"]);
        assert_eq!(
            c.changed,
            vec![("KZ-2".to_string(), vec!["region", "registered_voters"])]
        );
        assert!(changes(&new, &new).is_empty());
    }

    #[test]
    fn without_a_registry_every_station_is_known() {
        let named = vec!["KZ-1".to_string(), "KZ-9".to_string()];
        assert!(unknown(None, &named).is_empty());
        assert_eq!(holds(None, "KZ-9"), None);
        let stations = parse_str(&format!("{HEADER}KZ-1,A,R,D,Addr,10,,\n"))
            .unwrap()
            .stations;
        let registry = Current::first_version(stations);
        assert_eq!(unknown(Some(&registry), &named), vec!["KZ-9"]);
        assert_eq!(holds(Some(&registry), "KZ-1"), Some(true));
        assert_eq!(holds(Some(&registry), "KZ-9"), Some(false));
    }
}

//! Workbooks for the tests, written as the Markdown tables pyxform's own
//! tests use (one `## sheet` heading per sheet, then `| a | b |` rows),
//! saved as real `.xlsx` files, and pyxform (PyPI) run on each as the
//! reference for what valid XLSForm is.

use std::path::Path;
use std::process::Command;

use rust_xlsxwriter::Workbook;

/// An `.xlsx` workbook from Markdown tables.
pub fn workbook(md: &str) -> Vec<u8> {
    let mut book = Workbook::new();
    let mut sheet = None;
    let mut row = 0u32;
    for line in md.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(name) = line.strip_prefix("## ") {
            let ws = book.add_worksheet();
            ws.set_name(name.trim()).unwrap();
            sheet = Some(book.worksheets_mut().len() - 1);
            row = 0;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let ws = &mut book.worksheets_mut()[sheet.expect("a ## sheet heading first")];
        for (c, v) in cells.iter().enumerate() {
            if !v.is_empty() {
                ws.write_string(row, c as u16, *v).unwrap();
            }
        }
        row += 1;
    }
    book.save_to_buffer().unwrap()
}

/// What pyxform says of a workbook: `Ok` with its warnings, or its error.
pub fn pyxform(dir: &Path, name: &str, xlsx: &[u8]) -> Result<String, String> {
    let input = dir.join(format!("{name}.xlsx"));
    std::fs::write(&input, xlsx).unwrap();
    let out = Command::new("python3")
        .args(["-m", "pyxform.xls2xform", "--skip_validate", "--json"])
        .arg(&input)
        .arg(dir.join(format!("{name}.xml")))
        .output()
        .expect("python3 runs");
    // The JSON report goes to standard error.
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !report.contains("No module named"),
        "pyxform is not installed (tests/run installs it from PyPI): {report}"
    );
    let line = report
        .lines()
        .rfind(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON report from pyxform: {report}"));
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("pyxform's JSON report ({e}): {report}"));
    match v["code"].as_i64() {
        Some(100) | Some(101) => Ok(v["warnings"].to_string()),
        _ => Err(v["message"].as_str().unwrap_or_default().to_string()),
    }
}

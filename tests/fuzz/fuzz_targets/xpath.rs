//! An XLSForm expression from a workbook a coordinator uploads (or anyone
//! who can hand one to a coordinator). Parsing must never panic, and what
//! parses must print as XPath that reads back to the same tree (the
//! export's promise that a form survives a round trip through a
//! spreadsheet).
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer_xlsform::xpath;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = xpath::parse(text, Some("me")) else {
        return;
    };
    if let Ok(printed) = xpath::print(&expr, Some("me")) {
        let again = xpath::parse(&printed, Some("me"))
            .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(again, expr, "{text:?} printed as {printed:?}");
    }
    // And it evaluates without panicking.
    let answers = serde_json::json!({"me": 3, "a": "x", "b": [1, "y"], "c": 2.5});
    let _ = expr.eval(answers.as_object().unwrap());
});

//! XLSForm on the coordinator's side: `forms export` writes a workbook,
//! a coordinator edits it (here: adds a question and bumps the version),
//! `forms import` checks it and, with --publish, publishes it (audited,
//! once); a bad workbook is refused naming the cell; and an admin converts
//! a workbook in the workspace and reviews it before publishing.

mod support;

use observer_core::forms::{Field, FormDefinition, default_forms};
use reqwest::blocking::multipart::{Form, Part};
use support::*;

/// The shipped counting form as a coordinator would change it: a sixth
/// party, version 2.
fn counting_v2_workbook(exported: &[u8]) -> Vec<u8> {
    let mut def = observer_xlsform::import(exported, "counting").unwrap().form;
    def.version = 2;
    let mut sixth: Field = def.field("party_5").unwrap().clone();
    sixth.id = "party_6".into();
    sixth.label = [("en".to_string(), "Votes for party 6".to_string())].into();
    let at = def.fields.iter().position(|f| f.id == "party_5").unwrap() + 1;
    def.fields.insert(at, sixth);
    let def = FormDefinition::parse(&def.to_json().to_string()).unwrap();
    observer_xlsform::export(&def).unwrap()
}

#[test]
fn a_coordinator_exports_edits_and_imports_a_workbook() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let xlsx = dir.path().join("counting.xlsx");
    let out = server.cli(&[
        "forms",
        "export",
        "counting",
        "--output",
        xlsx.to_str().unwrap(),
    ]);
    assert!(out.starts_with("wrote counting v1 to"), "{out}");
    let exported = std::fs::read(&xlsx).unwrap();
    let shipped = default_forms().iter().find(|f| f.id == "counting").unwrap();
    assert_eq!(
        &observer_xlsform::import(&exported, "counting")
            .unwrap()
            .form,
        shipped
    );

    let v2 = dir.path().join("counting-v2.xlsx");
    std::fs::write(&v2, counting_v2_workbook(&exported)).unwrap();
    let json = dir.path().join("counting-v2.json");
    let checked = server.cli(&[
        "forms",
        "import",
        v2.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        checked.contains("warning: survey row 14: label has no Kazakh (kk) text"),
        "{checked}"
    );
    assert!(
        checked.contains("checked counting v2 (17 fields, 5 rules); not published"),
        "{checked}"
    );
    assert!(
        !server.cli(&["forms", "list"]).contains("counting"),
        "checking publishes nothing"
    );
    let def = FormDefinition::parse(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(def.field("party_6").is_some());

    let published = server.cli(&["forms", "import", v2.to_str().unwrap(), "--publish"]);
    assert!(
        published.contains("published counting v2 (17 fields, 5 rules)"),
        "{published}"
    );
    assert!(server.cli(&["forms", "list"]).contains("counting     v2"));
    let again = server.cli(&["forms", "import", v2.to_str().unwrap(), "--publish"]);
    assert!(again.contains("already published: counting v2"), "{again}");
    let audit = server.cli(&["audit"]);
    assert_eq!(audit.matches("form.published").count(), 1, "{audit}");

    // The newest version exports by default; JSON too.
    let back = dir.path().join("back.json");
    server.cli(&[
        "forms",
        "export",
        "counting",
        "--format",
        "json",
        "--output",
        back.to_str().unwrap(),
    ]);
    assert_eq!(
        FormDefinition::parse(&std::fs::read_to_string(&back).unwrap()).unwrap(),
        def
    );

    // A bad workbook: refused, naming sheet, row and column; nothing published.
    let bad = dir.path().join("bad.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let survey = book.add_worksheet().set_name("survey").unwrap();
    for (c, h) in ["type", "name", "label"].iter().enumerate() {
        survey.write_string(0, c as u16, *h).unwrap();
    }
    for (c, v) in ["select_one elsewhere", "pick", "Pick one"]
        .iter()
        .enumerate()
    {
        survey.write_string(1, c as u16, *v).unwrap();
    }
    std::fs::write(&bad, book.save_to_buffer().unwrap()).unwrap();
    let out = command(&dir.path().join("server"))
        .args(["forms", "import", bad.to_str().unwrap(), "--publish"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "survey row 2, column type: the choice list \"elsewhere\" is not on the choices sheet"
        ),
        "{err}"
    );
    assert_eq!(server.cli(&["audit"]).matches("form.published").count(), 1);
}

#[test]
fn an_admin_converts_a_workbook_in_the_workspace_and_reviews_it_before_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let mut admin = server.signed_in("aigerim", "admin");
    let mut sam = server.signed_in("sam", "supervisor");
    let (csrf, sam_csrf) = (admin.csrf(), sam.csrf());
    let shipped = default_forms().iter().find(|f| f.id == "counting").unwrap();
    let v2 = counting_v2_workbook(&observer_xlsform::export(shipped).unwrap());
    let upload = |csrf: &str, bytes: Vec<u8>| {
        Form::new()
            .text("csrf", csrf.to_string())
            .part("workbook", Part::bytes(bytes).file_name("counting-v2.xlsx"))
    };

    assert_eq!(
        sam.post_multipart("/forms/xlsx", upload(&sam_csrf, v2.clone()))
            .status,
        403
    );
    assert_eq!(
        admin
            .post_multipart("/forms/xlsx", upload("forged", v2.clone()))
            .status,
        403
    );
    assert!(
        !sam.get("/forms").text.contains("name=\"workbook\""),
        "no upload for a supervisor"
    );

    let page = admin.post_multipart("/forms/xlsx", upload(&csrf, v2.clone()));
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("converts to counting version 2"),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("label has no Kazakh (kk) text"),
        "the warnings are listed"
    );
    assert!(
        page.text.contains("party_6"),
        "the definition is shown to read"
    );
    assert!(
        !server.cli(&["forms", "list"]).contains("counting"),
        "converting publishes nothing"
    );
    let definition = page
        .field_text("definition")
        .expect("the definition in the textarea");
    let published = admin.post("/forms", &[("csrf", &csrf), ("definition", &definition)]);
    assert_eq!(published.status, 303, "{}", published.text);
    assert!(server.cli(&["forms", "list"]).contains("counting     v2"));

    let refused = admin.post_multipart("/forms/xlsx", upload(&csrf, b"not a workbook".to_vec()));
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .text
            .contains("cannot be converted: not a readable .xlsx workbook"),
        "{}",
        refused.text
    );
}

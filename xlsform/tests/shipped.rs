//! The shipped forms are also kept as XLSForm workbooks beside their JSON
//! (`core/forms/*.xlsx`): importing each gives the same definition, and
//! exporting the JSON writes the committed workbook byte for byte (so the
//! two cannot drift apart). `OBSERVER_WRITE_XLSX=1` rewrites them.

use std::path::PathBuf;

use observer_core::forms::{FormDefinition, default_forms};

fn forms_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/forms")
}

#[test]
fn every_shipped_form_round_trips_through_its_workbook() {
    assert!(default_forms().len() >= 6);
    for form in default_forms() {
        let json = std::fs::read_to_string(forms_dir().join(format!("{}.json", form.id))).unwrap();
        let from_json = FormDefinition::parse(&json).unwrap();
        let exported = observer_xlsform::export(&from_json).unwrap();
        let back = observer_xlsform::import(&exported, &form.id).unwrap();
        assert_eq!(
            back.form, from_json,
            "{} exported and imported again",
            form.id
        );
        assert_eq!(
            back.warnings,
            vec![],
            "{}: a shipped form has every translation",
            form.id
        );
        assert_eq!(
            observer_xlsform::export(&from_json).unwrap(),
            exported,
            "{}: exporting is deterministic",
            form.id
        );
        let path = forms_dir().join(format!("{}.xlsx", form.id));
        if std::env::var_os("OBSERVER_WRITE_XLSX").is_some() {
            std::fs::write(&path, &exported).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (OBSERVER_WRITE_XLSX=1 writes it)", path.display())
        });
        assert_eq!(
            observer_xlsform::import(&committed, &form.id).unwrap().form,
            from_json,
            "{}: the committed workbook imports to the JSON definition",
            form.id
        );
        assert!(
            committed == exported,
            "{}: the committed workbook is stale; rerun with OBSERVER_WRITE_XLSX=1",
            form.id
        );
    }
}

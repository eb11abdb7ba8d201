//! A corpus of XLSForm workbooks written for these tests, in the ways ODK's
//! and KoboToolbox's documentation use the constructs. Each is also
//! converted by pyxform as the reference for valid XLSForm. For each,
//! either a definition that treats sample answers the way the source form
//! means them, or a refusal that names the sheet, row, column and the
//! unsupported construct.

mod support;

use observer_core::forms::{FormDefinition, Problem, Validation};
use serde_json::{Value, json};
use support::{pyxform, workbook};

fn check(form: &FormDefinition, answers: Value) -> Validation {
    form.validate(answers.as_object().expect("answers are an object"), "en")
}

fn problems(v: &Validation) -> Vec<(String, Problem)> {
    v.problems
        .iter()
        .map(|p| (p.field.clone(), p.problem))
        .collect()
}

fn failed(v: &Validation) -> Vec<String> {
    v.findings.iter().map(|f| f.rule.clone()).collect()
}

/// Imports a workbook that pyxform accepts too.
fn accepted(dir: &std::path::Path, name: &str, md: &str) -> observer_xlsform::Imported {
    let xlsx = workbook(md);
    if let Err(e) = pyxform(dir, name, &xlsx) {
        panic!("{name}: pyxform refuses the workbook: {e}");
    }
    observer_xlsform::import(&xlsx, name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const TYPES: &str = r#"
## survey
| type                  | name       | label::English (en) | label::Russian (ru) | calculation              | default | constraint   |
| integer               | age        | Age                 | Возраст             |                          | 30      | . >= 18 and . <= 120 |
| decimal               | share      | Share               | Доля                |                          |         |              |
| text                  | comment    | Comment             | Комментарий         |                          |         | string-length(.) <= 20 |
| select_one yes_no     | open       | Open on time?       | Открыт вовремя?     |                          | yes     |              |
| select_one event      | event      | Event               | Событие             |                          |         |              |
| select_multiple prob  | problems   | Problems            | Нарушения           |                          |         |              |
| date                  | day        | Day                 | День                |                          |         |              |
| time                  | at         | Time                | Время               |                          |         |              |
| dateTime              | when       | When                | Когда               |                          |         |              |
| image                 | photo      | Photo               | Фото                |                          |         |              |
| audio                 | sound      | Recording           | Запись              |                          |         |              |
| video                 | film       | Video               | Видео               |                          |         |              |
| note                  | intro      | Read carefully      | Читайте внимательно |                          |         |              |
| acknowledge           | briefed    | I was briefed       | Я прошёл инструктаж |                          |         |              |
| calculate             | double_age |                     |                     | ${age} * 2               |         |              |
## choices
| list_name | name    | label::English (en) | label::Russian (ru) |
| yes_no    | yes     | Yes                 | Да                  |
| yes_no    | no      | No                  | Нет                 |
| event     | admitted| Admitted            | Допущен             |
| event     | denied  | Denied              | Не допущен          |
| prob      | stuffing| Ballot stuffing     | Вброс               |
| prob      | carousel| Carousel            | Карусель            |
## settings
| form_id | version | form_title | observer_kind | observer_sealed |
| types   | 7       | Every type | incident      | yes             |
"#;

const RELEVANCE: &str = r#"
## survey
| type              | name     | label::English (en) | relevant                              |
| select_one event  | event    | Event               |                                       |
| text              | reason   | Reason              | ${event} = 'denied'                   |
| select_multiple p | problems | Problems            |                                       |
| text              | stuffing | Describe            | selected(${problems}, 'stuffing')     |
| text              | who      | Who                 | ${reason} != ''                       |
| begin group       | count    | Counting            | not(${event} = 'denied')              |
| integer           | cast     | Cast                |                                       |
| begin group       | detail   | Detail              | ${cast} > 0                           |
| integer           | party_1  | Party 1             |                                       |
| end group         |          |                     |                                       |
| end group         |          |                     |                                       |
| select_one yes_no | ok       | All fine?           |                                       |
| text              | why_not  | Why not?            | ${ok} = 'no'                          |
## choices
| list_name | name     | label::English (en) |
| event     | admitted | Admitted            |
| event     | denied   | Denied              |
| p         | stuffing | Stuffing            |
| p         | carousel | Carousel            |
| yes_no    | yes      | Yes                 |
| yes_no    | no       | No                  |
"#;

const CONSTRAINTS: &str = r#"
## survey
| type              | name     | label::English (en) | label::Russian (ru) | constraint                            | constraint_message::English (en) | constraint_message::Russian (ru) |
| integer           | issued   | Issued              | Выдано              | . >= 0                                |                                  |                                  |
| integer           | cast     | Cast                | В урнах             | . <= ${issued}                        | More cast than issued            | В урнах больше, чем выдано       |
| text              | code     | Station code        | Код участка         | regex(., 'KZ-[A-Z]{3}-[0-9]{4}')      | Like KZ-ALA-0042                 | Как KZ-ALA-0042                  |
| select_multiple p | problems | Problems            | Нарушения           | count-selected(.) <= 2                | At most two                      | Не больше двух                   |
| decimal           | share    | Share               | Доля                | . >= 0 and . <= 1                     |                                  |                                  |
| integer           | even     | Even number         | Чётное число        | . mod 2 = 0                           |                                  |                                  |
## choices
| list_name | name     | label::English (en) | label::Russian (ru) |
| p         | a        | A                   | А                   |
| p         | b        | B                   | Б                   |
| p         | c        | C                   | В                   |
"#;

const CALCULATE: &str = r#"
## survey
| type      | name      | label::English (en) | calculation                                   | constraint                |
| integer   | a         | A                   |                                               |                           |
| integer   | b         | B                   |                                               |                           |
| calculate | total     |                     | ${a} + ${b}                                   |                           |
| calculate | share_a   |                     | if(${total} > 0, ${a} div ${total}, 0)        |                           |
| calculate | label_a   |                     | coalesce(${nick}, 'none')                     |                           |
| text      | nick      | Nickname            |                                               |                           |
| integer   | c         | C                   |                                               | . = ${total} - 1          |
"#;

const TRANSLATIONS: &str = r#"
## survey
| type    | name | label      | label::Russian (ru) | label::Kazakh (kk) | hint::Russian (ru) |
| integer | a    | Voters     | Избиратели          | Сайлаушылар        | Число              |
| integer | b    | Ballots    | Бюллетени           |                    |                    |
## settings
| form_id | default_language | form_title | observer_title::Russian (ru) |
| tr      | English (en)     | Translated | Переведённая                 |
"#;

#[test]
fn every_supported_construct_means_what_the_source_form_means() {
    let dir = tempfile::tempdir().unwrap();

    // Types, defaults and settings.
    let t = accepted(dir.path(), "types", TYPES);
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    let f = &t.form;
    assert_eq!(
        (f.id.as_str(), f.version, f.kind.as_str(), f.sealed),
        ("types", 7, "incident", true)
    );
    assert_eq!(f.title["en"], "Every type");
    assert_eq!(f.field("age").unwrap().default, Some(json!(30)));
    assert_eq!(f.field("open").unwrap().default, Some(json!(true)));
    let good = json!({"age": 40, "share": 0.5, "comment": "fine", "open": true, "event": "denied",
        "problems": ["stuffing", "carousel"], "day": "2026-12-06", "at": "07:45",
        "when": "2026-12-06T07:45", "briefed": true, "double_age": 80,
        "photo": "a".repeat(64), "sound": "b".repeat(64), "film": "c".repeat(64)});
    let v = check(f, good.clone());
    assert!(v.is_clean(), "{:?}", v);
    assert!(
        !v.visible.contains(&"double_age".to_string()),
        "a calculation is not asked"
    );
    assert!(v.visible.contains(&"intro".to_string()), "a note is shown");
    let mut bad = good.clone();
    bad["age"] = json!(12);
    bad["comment"] = json!("x".repeat(21));
    bad["open"] = json!("yes");
    bad["event"] = json!("expelled");
    bad["day"] = json!("2026-02-30");
    bad["when"] = json!("yesterday");
    bad["briefed"] = json!(false);
    bad["double_age"] = json!(99);
    bad["intro"] = json!("an answer to a note");
    let p = problems(&check(f, bad));
    for want in [
        ("age", Problem::OutOfRange),
        ("comment", Problem::TooLong),
        ("open", Problem::WrongType),
        ("event", Problem::UnknownOption),
        ("day", Problem::BadDate),
        ("when", Problem::BadDate),
        ("briefed", Problem::WrongType),
        ("double_age", Problem::Miscalculated),
        ("intro", Problem::WrongType),
    ] {
        assert!(
            p.contains(&(want.0.to_string(), want.1)),
            "{want:?} in {p:?}"
        );
    }

    // Relevance: comparisons, selected(), answered, not(), nested groups.
    let r = accepted(dir.path(), "relevance", RELEVANCE);
    let visible = |answers: Value| check(&r.form, answers).visible;
    let v = visible(json!({"event": "denied", "reason": "no badge", "problems": ["carousel"]}));
    assert!(v.contains(&"reason".into()) && v.contains(&"who".into()));
    assert!(!v.contains(&"stuffing".into()));
    assert!(
        !v.contains(&"cast".into()) && !v.contains(&"party_1".into()),
        "the group is hidden"
    );
    let v = visible(json!({"event": "admitted", "problems": ["stuffing"], "cast": 0, "ok": false}));
    assert!(!v.contains(&"reason".into()) && !v.contains(&"who".into()));
    assert!(v.contains(&"stuffing".into()) && v.contains(&"cast".into()));
    assert!(
        !v.contains(&"party_1".into()),
        "the inner group needs cast > 0"
    );
    assert!(
        v.contains(&"why_not".into()),
        "'no' is the yes/no answer false"
    );
    let v = visible(json!({"event": "admitted", "cast": 5, "ok": true}));
    assert!(v.contains(&"party_1".into()) && !v.contains(&"why_not".into()));
    let sections: Vec<&str> = r
        .form
        .sections(r.form.field("party_1").unwrap())
        .iter()
        .map(|g| g.id.as_str())
        .collect();
    assert_eq!(sections, ["count", "detail"]);

    // Constraints: ranges become ranges, the rest rules with their messages.
    let c = accepted(dir.path(), "constraints", CONSTRAINTS);
    let answers = json!({"issued": 100, "cast": 101, "code": "KZ-ala-42", "problems": ["a", "b", "c"],
        "share": 1.5, "even": 3});
    let v = c.form.validate(answers.as_object().unwrap(), "ru");
    assert_eq!(failed(&v), ["cast", "code", "problems", "even"]);
    assert!(
        v.findings[0].message.contains("В урнах больше"),
        "{:?}",
        v.findings
    );
    assert!(problems(&v).contains(&("share".into(), Problem::OutOfRange)));
    let v = check(
        &c.form,
        json!({"issued": 100, "cast": 90, "code": "KZ-ALA-0042",
        "problems": ["a"], "share": 0.3, "even": 4}),
    );
    assert!(v.is_clean(), "{v:?}");
    let v = check(&c.form, json!({"issued": -1}));
    assert!(problems(&v).contains(&("issued".into(), Problem::OutOfRange)));
    assert!(
        failed(&v).is_empty(),
        "constraints on unanswered questions do not fail"
    );

    // Calculations feed constraints; coalesce and if() cover empty answers.
    let k = accepted(dir.path(), "calculate", CALCULATE);
    let v = check(&k.form, json!({"a": 3, "b": 4, "c": 6}));
    assert!(v.is_clean(), "{v:?}");
    let v = check(&k.form, json!({"a": 3, "b": 4, "c": 7}));
    assert_eq!(failed(&v), ["c"]);
    let v = check(
        &k.form,
        json!({"a": 3, "b": 1, "total": 4, "share_a": 0.75, "label_a": "none"}),
    );
    assert!(
        !problems(&v).iter().any(|p| p.1 == Problem::Miscalculated),
        "{v:?}"
    );
    let v = check(&k.form, json!({"a": 3, "b": 1, "label_a": "x"}));
    assert!(problems(&v).contains(&("label_a".into(), Problem::Miscalculated)));

    // Translations: plain columns are the default language; a missing one
    // is a warning naming the language and the row.
    let tr = accepted(dir.path(), "translations", TRANSLATIONS);
    assert_eq!(tr.form.field("a").unwrap().label["ru"], "Избиратели");
    assert_eq!(tr.form.field("a").unwrap().label["en"], "Voters");
    assert_eq!(tr.form.title["ru"], "Переведённая");
    let w: Vec<String> = tr.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.contains(&"survey row 3: label has no Kazakh (kk) text".to_string()),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.starts_with("survey row 2: hint has no English (en) text")),
        "{w:?}"
    );

    // Every one of them exports and imports back to itself.
    for form in [&t.form, &r.form, &c.form, &k.form, &tr.form] {
        let again = observer_xlsform::export(form).unwrap();
        pyxform(dir.path(), &format!("{}-again", form.id), &again)
            .unwrap_or_else(|e| panic!("{}: pyxform refuses the export: {e}", form.id));
        assert_eq!(
            &observer_xlsform::import(&again, &form.id).unwrap().form,
            form
        );
    }
}

/// Workbooks pyxform accepts with constructs Observer does not support:
/// each refused with the place and the construct named.
#[test]
fn unsupported_constructs_are_refused_by_name_and_place() {
    let dir = tempfile::tempdir().unwrap();
    // Columns: type | name | label | calculation | relevant | choice_filter
    let cases = [
        (
            "concat",
            "| calculate | full | | concat(${a}, 'x') | | |",
            "survey row 3, column calculation: at character 1: the function concat() is not supported",
        ),
        (
            "repeat",
            "| begin repeat | people | People | | | |\n| text | person | Person | | | |\n| end repeat | | | | | |",
            "survey row 3, column type: repeats are not supported",
        ),
        (
            "geopoint",
            "| geopoint | where | Where | | | |",
            "survey row 3, column type: the type \"geopoint\" is not supported",
        ),
        (
            "path",
            "| text | b | B | | /data/a > 1 | |",
            "survey row 3, column relevant: at character 1: path expressions",
        ),
        (
            "today",
            "| text | b | B | | ${a} > 1 and today() > '2026-01-01' | |",
            "survey row 3, column relevant: at character 14: the function today() is not supported",
        ),
        (
            "or_other",
            "| select_one l or_other | pick | Pick | | | |",
            "survey row 3, column type: `or_other` is not supported",
        ),
        (
            "choice_filter",
            "| select_one l | pick | Pick | | | name = 'x' |",
            "survey row 3, column choice_filter: the column \"choice_filter\" is not supported",
        ),
        (
            "cycle",
            "| integer | b | B | | ${c} > 1 | |\n| integer | c | C | | ${b} > 1 | |",
            "survey rows 3, 4: the converted form was refused: the conditions or calculations of fields b -> c -> b depend on each other in a loop",
        ),
    ];
    for (name, rows, want) in cases {
        let md = format!(
            "## survey\n| type | name | label::English (en) | calculation | relevant | choice_filter |\n\
             | integer | a | A | | | |\n{rows}\n\
             ## choices\n| list_name | name | label::English (en) |\n| l | x | X |\n| l | y | Y |\n"
        );
        let xlsx = workbook(&md);
        if let Err(e) = pyxform(dir.path(), name, &xlsx) {
            panic!("{name}: pyxform should accept this workbook: {e}\n{md}");
        }
        let e = observer_xlsform::import(&xlsx, name)
            .expect_err(name)
            .to_string();
        assert!(e.contains(want), "{name}: {e}");
    }
}

/// Workbooks that are not valid XLSForm: pyxform refuses them too, and
/// Observer says where.
#[test]
fn bad_workbooks_get_errors_with_sheet_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let head = "## survey\n| type | name | label::English (en) | relevant |\n";
    let cases = [
        (
            "unknown_list",
            "| select_one nowhere | pick | Pick | |",
            "survey row 2, column type: the choice list \"nowhere\" is not on the choices sheet",
        ),
        (
            "duplicate",
            "| integer | a | A | |\n| text | a | A again | |",
            "survey row 3, column name: \"a\" names two rows",
        ),
        (
            "unknown_field",
            "| integer | a | A | ${nope} > 1 |",
            "survey row 2, column relevant: ${nope} is not a question of this form",
        ),
        (
            "unclosed",
            "| begin group | g | G | |\n| integer | a | A | |",
            "the group \"g\" is never ended",
        ),
        (
            "unknown_type",
            "| integr | a | A | |",
            "survey row 2, column type: the type \"integr\" is not supported",
        ),
    ];
    for (name, rows, want) in cases {
        let md = format!(
            "{head}{rows}\n## choices\n| list_name | name | label::English (en) |\n| l | x | X |\n"
        );
        let xlsx = workbook(&md);
        assert!(
            pyxform(dir.path(), name, &xlsx).is_err(),
            "{name}: pyxform accepts it, so the case is not invalid XLSForm"
        );
        let e = observer_xlsform::import(&xlsx, name)
            .expect_err(name)
            .to_string();
        assert!(e.contains(want), "{name}: {e}");
    }
    // Not a workbook at all.
    let e = observer_xlsform::import(b"PK\x03\x04 not really", "x").unwrap_err();
    assert!(
        e.to_string().starts_with("not a readable .xlsx workbook"),
        "{e}"
    );
    // No survey sheet.
    let e =
        observer_xlsform::import(&workbook("## choices\n| list_name | name |\n"), "x").unwrap_err();
    assert_eq!(e.to_string(), "the workbook has no \"survey\" sheet");
}

//! The rule engine and the form format: the shipped forms, answer
//! validation, property tests of the arithmetic, and a corpus of malformed
//! definitions that must each be refused with the right error.

use observer_core::forms::{
    FieldType, FormDefinition, FormError, Problem, Severity, default_forms,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn form(id: &str) -> FormDefinition {
    default_forms().iter().find(|f| f.id == id).unwrap().clone()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn shipped_forms_parse_and_speak_kazakh_russian_and_english() {
    let forms = default_forms();
    let ids: Vec<_> = forms.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "opening", "voting", "closing", "counting", "incident", "access"
        ]
    );
    for f in forms {
        let mut texts = vec![&f.title];
        for field in &f.fields {
            texts.push(&field.label);
            if let FieldType::SingleChoice { options } | FieldType::MultipleChoice { options } =
                &field.kind
            {
                texts.extend(options.iter().map(|o| &o.label));
            }
        }
        texts.extend(f.rules.iter().map(|r| &r.message));
        for t in texts {
            for lang in ["kk", "ru", "en"] {
                assert!(
                    t.get(lang).is_some_and(|s| !s.is_empty()),
                    "{}: {t:?} lacks {lang}",
                    f.id
                );
            }
        }
    }
    let incident = form("incident");
    let FieldType::SingleChoice { options } = &incident.field("type").unwrap().kind else {
        panic!()
    };
    for needed in [
        "ballot_stuffing",
        "carousel_voting",
        "multiple_voting",
        "improper_sealing",
        "unauthorised_persons",
        "observer_denied_entry",
        "observer_expelled",
        "recording_prohibited",
        "pressure_intimidation",
        "internet_outage",
        "other",
    ] {
        assert!(
            options.iter().any(|o| o.id == needed),
            "incident type {needed}"
        );
    }
}

fn counting_answers(
    received: i64,
    issued: i64,
    spoiled: i64,
    unused: i64,
    cast: i64,
    invalid: i64,
    votes: [i64; 5],
) -> Map<String, Value> {
    let mut m = obj(json!({
        "registered_voters": 2000, "ballots_received": received, "ballots_issued": issued,
        "ballots_spoiled": spoiled, "ballots_unused": unused, "ballots_cast": cast,
        "ballots_invalid": invalid, "count_announced": true, "copy_received": true,
    }));
    for (i, v) in votes.iter().enumerate() {
        m.insert(format!("party_{}", i + 1), json!(v));
    }
    m
}

#[test]
fn a_consistent_protocol_is_clean_and_a_stuffed_one_is_flagged_in_the_observers_language() {
    let f = form("counting");
    let ok = f.validate(
        &counting_answers(1500, 1100, 5, 395, 1100, 20, [500, 300, 200, 50, 30]),
        "en",
    );
    assert!(ok.is_clean(), "{ok:?}");
    assert!(ok.findings.is_empty());
    let stuffed = f.validate(
        &counting_answers(1500, 1100, 5, 395, 1180, 20, [580, 300, 200, 50, 30]),
        "ru",
    );
    let rule = stuffed
        .findings
        .iter()
        .find(|r| r.rule == "cast_not_above_issued")
        .unwrap();
    assert_eq!(rule.severity, Severity::Error);
    assert!(rule.message.contains("вброс"), "{}", rule.message);
    assert!(!stuffed.is_clean());
}

#[test]
fn conditions_show_and_hide_fields_and_hidden_answers_are_named() {
    let f = form("access");
    let admitted = f.validate(&obj(json!({"event": "admitted", "time": "07:00"})), "en");
    assert!(!admitted.visible.contains(&"reason_given".to_string()));
    assert!(admitted.is_clean(), "{admitted:?}");
    let denied = f.validate(&obj(json!({"event": "denied", "time": "06:00"})), "kk");
    assert!(denied.visible.contains(&"reason_given".to_string()));
    assert!(
        denied
            .problems
            .iter()
            .any(|p| p.field == "reason_given" && p.problem == Problem::Missing)
    );
    let odd = f.validate(
        &obj(json!({"event": "admitted", "time": "07:00", "reason_given": "x"})),
        "en",
    );
    assert!(
        odd.problems
            .iter()
            .any(|p| p.field == "reason_given" && p.problem == Problem::HiddenAnswered)
    );
    assert!(odd.is_clean(), "a hidden answer is not an error");
}

#[test]
fn each_kind_of_bad_answer_gets_its_problem() {
    let f = form("incident");
    let v = f.validate(
        &obj(
            json!({"type": "bribery", "time": "25:00", "description": 7, "reported_to_chair": "yes",
                    "photo": "not-a-hash", "mystery": 1}),
        ),
        "en",
    );
    let got = |field: &str| {
        v.problems
            .iter()
            .find(|p| p.field == field)
            .map(|p| p.problem)
    };
    assert_eq!(got("type"), Some(Problem::UnknownOption));
    assert_eq!(got("time"), Some(Problem::BadTime));
    assert_eq!(got("description"), Some(Problem::WrongType));
    assert_eq!(got("reported_to_chair"), Some(Problem::WrongType));
    assert_eq!(got("photo"), Some(Problem::NotAnAttachment));
    assert_eq!(got("mystery"), Some(Problem::UnknownField));
    let c = form("counting").validate(
        &obj(json!({"ballots_cast": -1, "ballots_issued": 1.5})),
        "en",
    );
    assert!(
        c.problems
            .iter()
            .any(|p| p.field == "ballots_cast" && p.problem == Problem::OutOfRange)
    );
    assert!(
        c.problems
            .iter()
            .any(|p| p.field == "ballots_issued" && p.problem == Problem::WrongType)
    );
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        "[0-9a-f]{64}".prop_map(Value::String),
        "[0-2][0-9]:[0-5][0-9]".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop::collection::vec(inner, 0..3).prop_map(Value::Array)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever a buggy or hostile app sends, validation answers; it never panics.
    #[test]
    fn random_answers_never_panic(answers in prop::collection::btree_map("[a-z_0-9]{1,20}", any_json(), 0..12),
                                  picks in prop::collection::vec((0usize..40, any_json()), 0..20)) {
        for f in default_forms() {
            let mut m: Map<String, Value> = answers.clone().into_iter().collect();
            for (i, v) in &picks {
                let id = f.fields[i % f.fields.len()].id.clone();
                m.insert(id, v.clone());
            }
            let v = f.validate(&m, "kk");
            prop_assert!(v.visible.len() <= f.fields.len());
        }
    }

    /// Each counting rule holds or fails exactly as its arithmetic says.
    #[test]
    fn counting_rules_follow_their_arithmetic(received in 0i64..3000, issued in 0i64..3000, spoiled in 0i64..50,
                                              unused in 0i64..3000, cast in 0i64..3000, invalid in 0i64..100,
                                              votes in prop::array::uniform5(0i64..1000)) {
        let v = form("counting").validate(&counting_answers(received, issued, spoiled, unused, cast, invalid, votes), "en");
        let failed = |id: &str| v.findings.iter().any(|f| f.rule == id);
        prop_assert_eq!(failed("received_reconciles"), received != issued + spoiled + unused);
        prop_assert_eq!(failed("cast_not_above_issued"), cast > issued);
        prop_assert_eq!(failed("votes_add_up"), cast != invalid + votes.iter().sum::<i64>());
        prop_assert_eq!(failed("cast_close_to_issued"), cast + 10 < issued);
        prop_assert_eq!(failed("issued_not_above_registered"), issued > 2000);
    }
}

#[test]
fn every_malformed_definition_in_the_corpus_is_refused_with_the_right_error() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/forms/bad-definitions.json"
    );
    let corpus: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(corpus.len() >= 20);
    for case in corpus {
        let name = case["name"].as_str().unwrap();
        let text = match &case["definition"] {
            Value::String(s) => s.clone(),
            d => d.to_string(),
        };
        let err = FormDefinition::parse(&text).expect_err(name);
        let variant = format!("{err:?}");
        let expect = case["expect"].as_str().unwrap();
        assert!(
            variant.starts_with(expect),
            "{name}: expected {expect}, got {err:?}"
        );
        let mentions = case["mentions"].as_str().unwrap();
        assert!(
            err.to_string().contains(mentions),
            "{name}: {err} should name {mentions:?}"
        );
    }
    assert!(matches!(
        FormDefinition::parse(&" ".repeat(600 * 1024)),
        Err(FormError::TooLarge { .. })
    ));
}

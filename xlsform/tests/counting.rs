//! The counting protocol written as an XLSForm, its five arithmetic rules
//! as constraints on the questions (the way an ODK form would write them),
//! flags the same impossible protocols as the shipped JSON form.

mod support;

use std::collections::BTreeSet;

use observer_core::forms::default_forms;
use serde_json::{Map, Value, json};

const COUNTING: &str = r#"
## survey
| type              | name                | label::English (en)  | required | constraint                                                   | constraint_message::English (en) |
| integer           | registered_voters   | Registered voters    | yes      | . >= 0 and . <= 100000                                       |                                  |
| integer           | ballots_received    | Ballots received     | yes      | . = ${ballots_issued} + ${ballots_spoiled} + ${ballots_unused} | Received must equal issued + spoiled + unused |
| integer           | ballots_issued      | Ballots issued       | yes      | . <= ${registered_voters}                                    | More issued than registered      |
| integer           | ballots_spoiled     | Spoiled              | yes      | . >= 0 and . <= 100000                                       |                                  |
| integer           | ballots_unused      | Unused               | yes      | . >= 0 and . <= 100000                                       |                                  |
| integer           | ballots_cast        | In the boxes         | yes      | . <= ${ballots_issued}                                       | More in the boxes than issued    |
| integer           | ballots_invalid     | Invalid              | yes      | ${ballots_cast} + 10 >= ${ballots_issued}                    | Many more issued than cast       |
| integer           | party_1             | Party 1              | yes      | . >= 0 and . <= 100000                                       |                                  |
| integer           | party_2             | Party 2              | yes      | . >= 0 and . <= 100000                                       |                                  |
| integer           | party_3             | Party 3              | yes      | . >= 0 and . <= 100000                                       |                                  |
| integer           | party_4             | Party 4              | yes      | . >= 0 and . <= 100000                                       |                                  |
| integer           | party_5             | Party 5              | yes      | ${ballots_cast} = ${ballots_invalid} + ${party_1} + ${party_2} + ${party_3} + ${party_4} + . | Votes do not add up |
| select_one yes_no | count_announced     | Announced aloud?     | yes      |                                                              |                                  |
## choices
| list_name | name | label::English (en) |
| yes_no    | yes  | Yes                 |
| yes_no    | no   | No                  |
## settings
| form_id        | version | observer_kind |
| counting_xls   | 1       | results       |
"#;

/// Which constraint of the workbook stands for which shipped rule.
const SAME_RULE: &[(&str, &str)] = &[
    ("received_reconciles", "ballots_received"),
    ("issued_not_above_registered", "ballots_issued"),
    ("cast_not_above_issued", "ballots_cast"),
    ("cast_close_to_issued", "ballots_invalid"),
    ("votes_add_up", "party_5"),
];

/// A small deterministic generator (the protocols must be the same on
/// every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n) as i64
    }
}

fn protocol(rng: &mut Lcg) -> Map<String, Value> {
    let registered = 500 + rng.next(2000);
    // Turnout near 100% in half of them, where a nudge breaks a rule.
    let issued = if rng.next(2) == 0 {
        registered - rng.next(15)
    } else {
        rng.next(registered as u64 + 1)
    };
    let spoiled = rng.next(20);
    let unused = rng.next(500);
    let cast = (issued - rng.next(5)).max(0);
    let invalid = rng.next(cast as u64 / 10 + 1);
    let mut left = cast - invalid;
    let mut parties = Vec::new();
    for _ in 0..4 {
        let p = rng.next(left as u64 + 1);
        parties.push(p);
        left -= p;
    }
    parties.push(left);
    let mut p = json!({
        "registered_voters": registered, "ballots_received": issued + spoiled + unused,
        "ballots_issued": issued, "ballots_spoiled": spoiled, "ballots_unused": unused,
        "ballots_cast": cast, "ballots_invalid": invalid, "count_announced": true,
    });
    for (i, v) in parties.iter().enumerate() {
        p[format!("party_{}", i + 1)] = json!(v);
    }
    // Break up to three numbers, as a falsified or mistyped protocol would.
    let keys: Vec<String> = p.as_object().unwrap().keys().cloned().collect();
    for _ in 0..rng.next(4) {
        let k = &keys[rng.next(keys.len() as u64) as usize];
        if let Some(n) = p[k].as_i64() {
            p[k] = json!((n + rng.next(41) - 20).max(0));
        }
    }
    p.as_object().unwrap().clone()
}

#[test]
fn the_counting_protocol_as_xlsform_flags_the_same_impossible_protocols() {
    let dir = tempfile::tempdir().unwrap();
    let xlsx = support::workbook(COUNTING);
    support::pyxform(dir.path(), "counting", &xlsx).expect("pyxform accepts the workbook");
    let xls = observer_xlsform::import(&xlsx, "counting_xls")
        .unwrap()
        .form;
    let shipped = default_forms().iter().find(|f| f.id == "counting").unwrap();

    let mut rng = Lcg(20261206);
    let mut failures = vec![0usize; SAME_RULE.len()];
    for _ in 0..3000 {
        let answers = protocol(&mut rng);
        let want: BTreeSet<&str> = shipped
            .validate(&answers, "en")
            .findings
            .iter()
            .filter_map(|f| SAME_RULE.iter().position(|r| r.0 == f.rule))
            .map(|i| SAME_RULE[i].0)
            .collect();
        let got: BTreeSet<&str> = xls
            .validate(&answers, "en")
            .findings
            .iter()
            .filter_map(|f| SAME_RULE.iter().position(|r| r.1 == f.rule))
            .map(|i| SAME_RULE[i].0)
            .collect();
        assert_eq!(got, want, "{}", Value::Object(answers.clone()));
        for (i, r) in SAME_RULE.iter().enumerate() {
            failures[i] += usize::from(want.contains(r.0));
        }
    }
    // Every rule both held and failed many times: the comparison means something.
    for (i, r) in SAME_RULE.iter().enumerate() {
        assert!(
            (100..2900).contains(&failures[i]),
            "{} failed {} times in 3000",
            r.0,
            failures[i]
        );
    }
}

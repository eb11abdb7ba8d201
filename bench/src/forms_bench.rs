//! Issue 5's figure: validating a full counting form with 30 parties, next
//! to the cost of merely parsing the same answers from JSON.

use std::path::Path;
use std::time::Instant;

use observer_core::forms::FormDefinition;
use serde_json::{Map, Value, json};

use crate::report::{Samples, machine, us};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The shipped counting form with its five parties widened to `parties`.
fn counting_form(parties: usize) -> Result<FormDefinition> {
    let shipped = include_str!("../../core/forms/counting.json");
    let mut v: Value = serde_json::from_str(shipped)?;
    let label = |i: usize| json!({"en": format!("Votes for party {i}"), "ru": format!("Голосов за партию {i}"), "kk": format!("{i}-партияға берілген дауыстар")});
    let fields = v["fields"].as_array_mut().ok_or("fields")?;
    fields.retain(|f| !f["id"].as_str().is_some_and(|id| id.starts_with("party_")));
    for i in (1..=parties).rev() {
        fields.insert(7, json!({"id": format!("party_{i}"), "type": "integer", "min": 0, "max": 100000, "required": true, "label": label(i)}));
    }
    let mut sum = vec![json!({"field": "ballots_invalid"})];
    sum.extend((1..=parties).map(|i| json!({"field": format!("party_{i}")})));
    for r in v["rules"].as_array_mut().ok_or("rules")? {
        if r["id"] == "votes_add_up" {
            r["check"] = json!({"eq": [{"field": "ballots_cast"}, {"sum": sum}]});
        }
    }
    Ok(FormDefinition::parse(&v.to_string())?)
}

fn answers(parties: usize, seed: u64) -> Map<String, Value> {
    let per = 1000 + (seed % 97) as i64;
    let mut m: Map<String, Value> = json!({
        "registered_voters": 60_000, "ballots_received": 40_000, "ballots_issued": 35_000,
        "ballots_spoiled": 20, "ballots_unused": 4_980, "ballots_invalid": 100,
        "count_announced": true, "copy_received": true,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    for i in 1..=parties {
        m.insert(format!("party_{i}"), json!(per));
    }
    m.insert("ballots_cast".into(), json!(100 + per * parties as i64));
    m
}

pub fn run(scratch: &Path, parties: usize, records: usize, command: &str) -> Result<String> {
    let form = counting_form(parties)?;
    let inputs: Vec<Map<String, Value>> =
        (0..records as u64).map(|s| answers(parties, s)).collect();
    let texts: Vec<String> = inputs
        .iter()
        .map(|m| Value::Object(m.clone()).to_string())
        .collect();
    for a in inputs.iter().take(1000) {
        std::hint::black_box(form.validate(a, "kk"));
    }
    let mut validate = Vec::with_capacity(records);
    let mut findings = 0;
    for a in &inputs {
        let t0 = Instant::now();
        let v = form.validate(a, "kk");
        validate.push(t0.elapsed());
        findings += v.findings.len();
    }
    let mut parse = Vec::with_capacity(records);
    for t in &texts {
        let t0 = Instant::now();
        std::hint::black_box(serde_json::from_str::<Map<String, Value>>(t)?);
        parse.push(t0.elapsed());
    }
    let (validate, parse) = (Samples::new(validate), Samples::new(parse));
    Ok(format!(
        "## Forms: validating a results protocol (issue 5)

Machine: {machine}.
Command: `{command}`.
The shipped counting form widened to {parties} parties ({fields} fields, {rules} rules),
{records} different protocols (labels and messages in Kazakh); {findings} rule findings in all.

| Operation | p50 | p99 | per second |
| --- | --- | --- | --- |
| **`FormDefinition::validate`** (visibility, types, every rule) | **{vp50}** (target: under 50 µs) | {vp99} | {vps:.0} |
| for scale: `serde_json` parsing the same answers from text | {pp50} | {pp99} | {pps:.0} |
",
        machine = machine(scratch),
        fields = form.fields.len(),
        rules = form.rules.len(),
        vp50 = us(validate.p50()),
        vp99 = us(validate.p99()),
        vps = validate.per_second(),
        pp50 = us(parse.p50()),
        pp99 = us(parse.p99()),
        pps = parse.per_second(),
    ))
}

//! The quick count: `pvt size`, `pvt draw`, `pvt sample`, `pvt estimate`.

use std::collections::BTreeMap;
use std::io::Write;

use super::access::Resolved;
use super::{Result, now_ms};
use crate::pvt::design::{self, Allocation, Confidence, Strata};
use crate::pvt::{self, Commitment, store};

/// What `observer-server pvt` does.
#[derive(Debug, clap::Subcommand)]
pub enum PvtAction {
    /// How many stations a sample needs for a margin of error.
    Size {
        /// The margin of error as a proportion (0.01 for one point).
        #[arg(long)]
        margin: f64,
        /// The confidence level.
        #[arg(long, value_enum, default_value = "95")]
        confidence: Confidence,
        /// The expected share (0.5, the most cautious, unless known).
        #[arg(long, default_value_t = 0.5)]
        share: f64,
        /// How much less a station's voters tell than as many voters
        /// drawn one by one (1: the handbook's assumption).
        #[arg(long, default_value_t = 1.0)]
        design_effect: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Draw the sample from the registry and commit to it in the audit log.
    Draw {
        /// Stations to draw, shared among the strata in proportion.
        #[arg(long, required_unless_present = "allocate")]
        size: Option<u64>,
        /// Stratify by region, or not at all.
        #[arg(long, value_enum, default_value = "region")]
        strata: Strata,
        /// The stations of each region instead of a proportional share:
        /// REGION=N, once per region.
        #[arg(long, value_name = "REGION=N", conflicts_with = "size")]
        allocate: Vec<String>,
        /// The seed (best: made in public, as dice rolls); without it,
        /// 128 random bits.
        #[arg(long)]
        seed: Option<String>,
        /// Replace the sample in force (the audit log keeps both).
        #[arg(long)]
        replace: bool,
    },
    /// The sample in force, as the canonical text its digest covers.
    Sample {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The estimates as they stand, and the verdict on the official result
    /// once it is imported.
    Estimate {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `action`.
pub fn run(at: &Resolved, action: PvtAction, out: &mut dyn Write) -> Result<()> {
    match action {
        PvtAction::Size {
            margin,
            confidence,
            share,
            design_effect,
            json,
        } => size(at, margin, confidence, share, design_effect, json, out),
        PvtAction::Draw {
            size,
            strata,
            allocate,
            seed,
            replace,
        } => draw(at, size, strata, &allocate, seed, replace, out),
        PvtAction::Sample { json } => sample(at, json, out),
        PvtAction::Estimate { json } => estimate(at, json, out),
    }
}

fn registry(c: &crate::coordinator::Coordinator) -> Result<crate::registry::Current> {
    crate::registry::current(c.storage.as_ref())?
        .ok_or_else(|| "no station registry: import one first (stations import FILE)".into())
}

fn size(
    at: &Resolved,
    margin: f64,
    confidence: Confidence,
    share: f64,
    design_effect: f64,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let c = at.open()?;
    let answer = design::sample_size(&registry(&c)?, margin, confidence, share, design_effect)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
    } else {
        writeln!(
            out,
            "{} voters of {} (a simple random sample of voters), {:.0} voters per station:\n{} stations",
            answer.voters, answer.population, answer.voters_per_station, answer.stations
        )?;
    }
    Ok(())
}

fn allocation(size: Option<u64>, allocate: &[String]) -> Result<Allocation> {
    if let Some(size) = size {
        return Ok(Allocation::Proportional { size });
    }
    let mut given = BTreeMap::new();
    for a in allocate {
        let (region, n) = a
            .rsplit_once('=')
            .ok_or_else(|| format!("--allocate {a:?}: expected REGION=N"))?;
        let n: u64 = n
            .parse()
            .map_err(|_| format!("--allocate {a:?}: {n:?} is not a whole number"))?;
        if given.insert(region.to_string(), n).is_some() {
            return Err(format!("--allocate names {region:?} twice").into());
        }
    }
    Ok(Allocation::Given(given))
}

fn draw(
    at: &Resolved,
    size: Option<u64>,
    strata: Strata,
    allocate: &[String],
    seed: Option<String>,
    replace: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let c = at.open()?;
    let storage = c.storage.as_ref();
    let held = store::load(storage)?;
    if held.is_some() && !replace {
        return Err(
            "a sample is already drawn and committed (pvt sample shows it); --replace draws another, and the audit log keeps both"
                .into(),
        );
    }
    let registry = registry(&c)?;
    let seed = seed.unwrap_or_else(design::random_seed);
    let sample = design::draw(&registry, strata, &allocation(size, allocate)?, &seed)?;
    // Protocols already in are said in the commitment: a sample replaced
    // once results arrived is visible as such.
    let mut results_held = 0u64;
    c.reader().records(
        &crate::storage::RecordFilter {
            kind: Some("results".into()),
            ..Default::default()
        },
        &mut |_| {
            results_held += 1;
            Ok(())
        },
    )?;
    let digest = sample.digest();
    let now = now_ms();
    let entry = crate::audit::append(
        storage,
        &c.key,
        crate::audit::Draft {
            actor: crate::audit::cli_actor(),
            action: "pvt.sample_drawn",
            subject: digest.to_string(),
            detail: serde_json::json!({
                "digest": digest.to_string(),
                "seed": sample.seed,
                "strata": sample.strata_by.as_str(),
                "registry_version": sample.registry_version,
                "registry_digest": sample.registry_digest.to_string(),
                "allocation": sample.strata.iter().map(|s| (s.name.clone(), s.sample)).collect::<BTreeMap<_, _>>(),
                "stations": sample.size(),
                "replaces": held.as_ref().map(|(_, c)| c.digest.to_string()),
                "results_held": results_held,
            }),
        },
        now,
    )?;
    store::save(
        storage,
        &sample,
        &Commitment {
            digest,
            audit_seq: entry.seq,
            audit_hash: entry.hash,
            drawn_at_ms: now,
        },
    )?;
    tracing::info!(stations = sample.size(), "quick-count sample drawn");
    writeln!(
        out,
        "drew {} stations in {} strata from registry version {} with seed {:?}",
        sample.size(),
        sample.strata.len(),
        sample.registry_version,
        sample.seed
    )?;
    writeln!(
        out,
        "committed as audit entry {}: sample digest {digest}",
        entry.seq
    )?;
    if results_held > 0 {
        writeln!(
            out,
            "warning: {results_held} results protocols had already arrived; the audit entry says so"
        )?;
    }
    Ok(())
}

fn sample(at: &Resolved, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let (sample, commitment) =
        store::load(c.storage.as_ref())?.ok_or("no sample drawn yet (pvt draw)")?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "sample": sample, "commitment": commitment })
            )?
        )?;
    } else {
        out.write_all(sample.text().as_bytes())?;
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

fn estimate(at: &Resolved, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let qc = pvt::quick_count(&c.reader(), now_ms())?.ok_or("no sample drawn yet (pvt draw)")?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&qc)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "sample {} (audit entry {}), seed {:?}",
        qc.commitment.digest, qc.commitment.audit_seq, qc.seed
    )?;
    for a in std::iter::once(&qc.estimate.country).chain(&qc.estimate.regions) {
        writeln!(
            out,
            "\n{}: {} of {} sampled stations reported",
            a.area, a.reported, a.sampled
        )?;
        for (party, r) in &a.parties {
            writeln!(
                out,
                "  {party:<12} {:>6}%  ±{} (95%)  ±{} (99%)",
                pct(r.estimate),
                pct(r.margin95),
                pct(r.margin99)
            )?;
        }
        if let Some(t) = &a.turnout {
            writeln!(
                out,
                "  {:<12} {:>6}%  ±{} (95%)  ±{} (99%)",
                "turnout",
                pct(t.estimate),
                pct(t.margin95),
                pct(t.margin99)
            )?;
        }
    }
    if !qc.estimate.strata_unreported.is_empty() {
        writeln!(
            out,
            "\nno report yet from: {} (the estimate leaves them out)",
            qc.estimate.strata_unreported.join(", ")
        )?;
    }
    if !qc.estimate.strata_single.is_empty() {
        writeln!(
            out,
            "one report only from: {} (no variance estimated there)",
            qc.estimate.strata_single.join(", ")
        )?;
    }
    if !qc.estimate.strata_thin.is_empty() {
        writeln!(
            out,
            "fewer than {} reports from: {} (their margins are understated until more arrive)",
            pvt::tally::THIN_STRATUM,
            qc.estimate.strata_thin.join(", ")
        )?;
    }
    if !qc.excluded.is_empty() {
        writeln!(out, "\nleft out:")?;
        for e in &qc.excluded {
            let why = match &e.why {
                pvt::tally::Exclusion::FailedRules => "fails the protocol's arithmetic".into(),
                pvt::tally::Exclusion::RejectedByVerifier => "rejected by a verifier".into(),
                pvt::tally::Exclusion::DeviceRevoked => "its device was revoked".into(),
                pvt::tally::Exclusion::MissingFigures => "figures missing".into(),
                pvt::tally::Exclusion::ObserversDisagree { observers } => {
                    format!("{observers} observers disagree")
                }
            };
            match e.index {
                Some(i) => writeln!(out, "  {:<16} record {i}: {why}", e.station)?,
                None => writeln!(out, "  {:<16} {why}", e.station)?,
            }
        }
    }
    if let Some(v) = &qc.verdict {
        writeln!(out, "\nverdict on the official result (99% intervals):")?;
        for a in std::iter::once(&v.country).chain(&v.regions) {
            writeln!(
                out,
                "  {}: {}",
                a.area,
                if a.consistent() {
                    "consistent"
                } else {
                    "NOT CONSISTENT"
                }
            )?;
            for j in &a.figures {
                writeln!(
                    out,
                    "    {:<12} official {:>6}%  estimate {:>6}% ±{}  difference {:+.2} points{}  {}",
                    j.figure,
                    pct(j.official),
                    pct(j.estimate),
                    pct(j.margin99),
                    j.difference_points,
                    j.z.map_or(String::new(), |z| format!(" (z = {z:+.2})")),
                    if j.within { "within" } else { "OUTSIDE" }
                )?;
            }
        }
        if !v.differing.is_empty() {
            writeln!(
                out,
                "\nsampled stations where the official figures differ from the observers' copy:"
            )?;
            for d in &v.differing {
                writeln!(
                    out,
                    "  {:<16} {:<20} observers {:>8}  official {:>8}",
                    d.station,
                    d.figure,
                    d.observed.map_or("-".into(), |v| v.to_string()),
                    d.official
                )?;
            }
        }
    }
    Ok(())
}

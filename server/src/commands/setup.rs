//! Setting a coordinator up and checking it: `init`, `rekey`, `verify`,
//! `media verify`, `forms`, `config default`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::access::Resolved;
use super::{Result, audited};
use crate::config::{ConfigFile, LimitSettings, ServeSettings};
use crate::coordinator::{Coordinator, Placement};
use crate::media::MediaFiles;
use crate::media::objects::ObjectMedia;
use crate::unlock::Unlock;

/// `init`: creates the coordinator's keys, certificate and database.
pub fn init(
    at: &Resolved,
    url: &str,
    org: &str,
    media_dir: Option<&Path>,
    media_store: Option<String>,
    out: &mut dyn Write,
) -> Result<()> {
    let unlock = at.unlock()?.ok_or(
        "init needs a key that is not kept with the data: --key-file PATH on other storage, or a passphrase in OBSERVER_SERVER_PASSPHRASE or --passphrase-file PATH",
    )?;
    let placement = Placement {
        media_dir: media_dir.map(Path::to_path_buf),
        media_store,
        database: at.database()?,
    };
    let c = Coordinator::init_with(&at.data, url, org, &placement, &unlock)?;
    writeln!(out, "initialised {}", at.data.display())?;
    if let Some(db) = &placement.database {
        writeln!(out, "database         {db}")?;
    }
    writeln!(out, "url              {}", c.url)?;
    writeln!(out, "organisation     {}", c.org)?;
    writeln!(out, "coordinator key  {}", c.key.public_key())?;
    writeln!(out, "TLS certificate  sha256 {}", c.tls_sha256())?;
    Ok(())
}

/// `rekey`: wraps the keys with a new key file or passphrase.
pub fn rekey(
    at: &Resolved,
    new_key_file: Option<PathBuf>,
    new_passphrase_file: Option<PathBuf>,
    out: &mut dyn Write,
) -> Result<()> {
    let c = at.open()?;
    let new = Unlock::choose(
        new_key_file.as_deref(),
        new_passphrase_file.as_deref(),
        "OBSERVER_SERVER_NEW_PASSPHRASE",
    )?
    .ok_or("give the new key: --new-key-file PATH, --new-passphrase-file PATH or OBSERVER_SERVER_NEW_PASSPHRASE")?;
    c.rekey(&new)?;
    tracing::info!("the coordinator's keys were wrapped anew");
    audited(&c, "keys.rewrapped", "", serde_json::json!({}))?;
    writeln!(
        out,
        "the coordinator's keys are now wrapped by the new {}; keep it away from {}",
        match new {
            Unlock::KeyFile(_) => "key file",
            Unlock::Passphrase(_) => "passphrase",
        },
        c.dir.display()
    )?;
    Ok(())
}

/// `verify`: re-checks every stored record and the log root.
pub fn verify(at: &Resolved, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let report = crate::integrity::full(&c.reader())?;
    for f in &report.findings {
        writeln!(
            out,
            "ALTERED record {} at log index {}: {}",
            f.id, f.index, f.problem
        )?;
    }
    if report.more_findings > 0 {
        writeln!(out, "... and {} more altered records", report.more_findings)?;
    }
    if !report.root_matches {
        writeln!(
            out,
            "ALTERED log: the root recomputed from the {} records does not match the stored log head",
            report.leaves
        )?;
    }
    if !report.nodes_match {
        writeln!(
            out,
            "ALTERED log: its stored nodes (what its proofs are made of) are not the ones its records give"
        )?;
    }
    if !report.is_intact() {
        return Err("this server's database was altered; restore it from a backup".into());
    }
    writeln!(
        out,
        "{} records intact (id, signature and columns checked), log root and nodes match, {} chain faults from the devices (see `devices`)",
        report.checked, report.chain_faults
    )?;
    Ok(())
}

/// `media verify`: re-hashes every stored media file.
pub fn media_verify(at: &Resolved, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let (count, bad) = match &c.media_store {
        Some(url) => {
            let objects = ObjectMedia::open(url)?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(objects.verify_all())?
        }
        None => {
            let failed = |e: std::io::Error| format!("{}: {e}", c.media_dir.display());
            let files = MediaFiles::new(c.media_dir.clone()).map_err(failed)?;
            files.verify_all().map_err(failed)?
        }
    };
    for (expected, found) in &bad {
        writeln!(out, "ALTERED {expected}: its bytes now hash to {found}")?;
    }
    if !bad.is_empty() {
        return Err(format!(
            "{} of {count} media files were altered where they are kept",
            bad.len()
        )
        .into());
    }
    writeln!(out, "{count} media files intact (every SHA-256 checked)")?;
    Ok(())
}

/// `config show`: the configuration in force (flags, variables, the file,
/// defaults, resolved), as a file that would give the same.
pub fn config_show(at: &Resolved, flags: ServeSettings, out: &mut dyn Write) -> Result<()> {
    let serve = flags.over(at.file.serve.clone());
    let effective = ConfigFile {
        data: Some(at.data.clone()),
        key_file: at.key_file().map(Path::to_path_buf),
        passphrase_file: at.passphrase_file().map(Path::to_path_buf),
        // Shown without its password: `config show` output gets pasted.
        database: at.database()?.map(|d| d.redacted().to_string()),
        log: at.log.clone(),
        serve: ServeSettings {
            listen: Some(serve.listen().to_string()),
            metrics_listen: serve.metrics_listen.clone(),
            limits: LimitSettings::from(&serve.limits.limits()),
        },
    };
    write!(out, "{}", effective.to_text())?;
    Ok(())
}

/// `config default`: a commented configuration file at the defaults.
pub fn config_default(out: &mut dyn Write) -> Result<()> {
    write!(out, "{}", crate::config::default_text())?;
    Ok(())
}

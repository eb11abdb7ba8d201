//! Coordinator accounts for the workspace:
//! `users add|list|disable|enable|passwd|totp`.
//! The first admin is made here (there is no shared token to sign in
//! with); later ones can also be added in the workspace by an admin.

use std::io::Write;
use std::path::Path;

use crate::accounts::{self, Account, Role};

use super::access::Resolved;
use super::{Result, audited, now_ms};

/// A password from `file` (its first line), or a new random one that is
/// printed once.
fn password(file: Option<&Path>) -> Result<(String, bool)> {
    match file {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            let first = text.lines().next().unwrap_or_default().to_string();
            accounts::check_password(&first)?;
            Ok((first, false))
        }
        None => Ok((accounts::generate_password()?, true)),
    }
}

/// Refuses a region the station registry does not name: an account
/// scoped to it would see nothing.
pub(crate) fn check_region_known(
    storage: &dyn crate::storage::Storage,
    region: Option<&str>,
) -> Result<()> {
    let Some(region) = region else {
        return Ok(());
    };
    match crate::registry::current(storage)? {
        Some(r) if r.has_region(region) => Ok(()),
        Some(r) => Err(format!(
            "no station of the registry is in region {region:?}; its regions are: {}",
            r.regions().join(", ")
        )
        .into()),
        None => {
            Err("a regional account needs the station registry: run `stations import` first".into())
        }
    }
}

/// `users add NAME --role ROLE [--region R] [--password-file F]`.
pub fn add(
    at: &Resolved,
    name: &str,
    role: Role,
    region: Option<&str>,
    password_file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    accounts::check_name(name)?;
    accounts::check_scope(role, region)?;
    let (password, generated) = password(password_file)?;
    let c = at.open()?;
    check_region_known(c.storage.as_ref(), region)?;
    let account = Account::new(
        name,
        role,
        region.map(str::to_string),
        accounts::hash_password(&password)?,
        now_ms(),
    )?;
    if !c.storage.account_store().add_account(&account)? {
        return Err(format!("an account named {name} exists already").into());
    }
    audited(
        &c,
        "account.added",
        name,
        serde_json::json!({ "role": role.as_str(), "region": region }),
    )?;
    match region {
        Some(r) => writeln!(out, "account {name} added with role {role} for region {r}")?,
        None => writeln!(out, "account {name} added with role {role}")?,
    }
    if generated {
        writeln!(out, "password (shown once): {password}")?;
    }
    writeln!(out, "sign in at {}/login", c.url)?;
    Ok(())
}

/// `users list [--json]`.
pub fn list(at: &Resolved, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let all = c.storage.account_store().accounts()?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<24} {:<11} {:<20} {:<9} {:<5} {:<24} failed sign-ins",
        "account", "role", "region", "state", "totp", "last sign-in"
    )?;
    for a in &all {
        writeln!(
            out,
            "{:<24} {:<11} {:<20} {:<9} {:<5} {:<24} {}",
            a.name,
            a.role.as_str(),
            a.region.as_deref().unwrap_or("(national)"),
            if a.disabled { "disabled" } else { "active" },
            if a.totp_sealed.is_some() { "yes" } else { "no" },
            crate::i18n::time(a.last_login_ms),
            a.failed_logins
        )?;
    }
    Ok(())
}

/// `users disable NAME` and `users enable NAME`: a disabled account's
/// sessions end at once.
pub fn set_disabled(at: &Resolved, name: &str, disabled: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    if !c.storage.account_store().set_disabled(name, disabled)? {
        return Err(format!("no account named {name}").into());
    }
    let action = if disabled {
        "account.disabled"
    } else {
        "account.enabled"
    };
    audited(&c, action, name, serde_json::json!({}))?;
    writeln!(
        out,
        "account {name} {}",
        if disabled {
            "disabled; its sessions ended"
        } else {
            "enabled"
        }
    )?;
    Ok(())
}

/// `users passwd NAME [--password-file F]`: a new password; every
/// session of the account ends and its failed sign-ins are forgotten.
pub fn passwd(
    at: &Resolved,
    name: &str,
    password_file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    let (password, generated) = password(password_file)?;
    let c = at.open()?;
    let hash = accounts::hash_password(&password)?;
    if !c.storage.account_store().set_password(name, &hash)? {
        return Err(format!("no account named {name}").into());
    }
    audited(&c, "account.password_set", name, serde_json::json!({}))?;
    writeln!(out, "new password set for {name}; its sessions ended")?;
    if generated {
        writeln!(out, "password (shown once): {password}")?;
    }
    Ok(())
}

/// `users totp NAME`: a new second-factor key for the account, shown once
/// as a QR code, an `otpauth://` URI and base32 text for an authenticator
/// app; from then on its sign-ins need a code. `--remove`: password only
/// again (for a coordinator who lost the phone with the app).
pub fn totp(at: &Resolved, name: &str, remove: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let store = c.storage.account_store();
    if store.account(name)?.is_none() {
        return Err(format!("no account named {name}").into());
    }
    if remove {
        store.set_totp(name, None)?;
        audited(&c, "account.totp_removed", name, serde_json::json!({}))?;
        writeln!(
            out,
            "second factor removed from {name}: it signs in with its password alone"
        )?;
        return Ok(());
    }
    let e =
        crate::second_factor::enroll(&c.seal.public_key(), &format!("Observer {}", c.org), name)?;
    store.set_totp(name, Some(&e.sealed))?;
    audited(&c, "account.totp_set", name, serde_json::json!({}))?;
    let qr = qrcode::QrCode::new(e.uri.as_bytes())?;
    let image = qr
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    writeln!(out, "{image}")?;
    writeln!(
        out,
        "Scan this with {name}'s authenticator app, or type the key in by hand."
    )?;
    writeln!(out, "key (shown once): {}", e.key_base32.as_str())?;
    writeln!(out, "uri (shown once): {}", e.uri.as_str())?;
    writeln!(
        out,
        "from now on {name} signs in with its password and a six-digit code"
    )?;
    Ok(())
}

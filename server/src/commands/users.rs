//! Coordinator accounts for the workspace: `users add|list|disable|enable|passwd`.
//! The first admin is made here (there is no shared token to sign in
//! with); later ones can also be added in the workspace by an admin.

use std::io::Write;
use std::path::Path;

use crate::accounts::{self, Account, Role};

use super::access::Resolved;
use super::{audited, now_ms, Result};

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

/// `users add NAME --role ROLE [--password-file F]`.
pub fn add(
    at: &Resolved,
    name: &str,
    role: Role,
    password_file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    accounts::check_name(name)?;
    let (password, generated) = password(password_file)?;
    let c = at.open()?;
    let account = Account::new(name, role, accounts::hash_password(&password)?, now_ms());
    if !c.storage.account_store().add_account(&account)? {
        return Err(format!("an account named {name} exists already").into());
    }
    audited(
        &c,
        "account.added",
        name,
        serde_json::json!({ "role": role.as_str() }),
    )?;
    writeln!(out, "account {name} added with role {role}")?;
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
        "{:<24} {:<11} {:<9} {:<24} failed sign-ins",
        "account", "role", "state", "last sign-in"
    )?;
    for a in &all {
        writeln!(
            out,
            "{:<24} {:<11} {:<9} {:<24} {}",
            a.name,
            a.role.as_str(),
            if a.disabled { "disabled" } else { "active" },
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

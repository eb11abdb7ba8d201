//! `sms gateways|status`: the SMS gateways this coordinator takes reports
//! from, and what arrived by SMS (messages still waiting for parts, and
//! the log of every text with the number it came from).

use std::io::Write;
use std::path::Path;

use super::access::Resolved;
use super::{Result, audited};
use crate::sms::GatewaySettings;

/// A secret read from a file, trimmed (never from the command line, where
/// other users of the machine and the shell history could read it).
fn secret(path: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = text.trim();
    if text.is_empty() || text.len() > 512 {
        return Err(format!("{} must hold one secret of 1 to 512 bytes", path.display()).into());
    }
    Ok(text.as_bytes().to_vec())
}

/// A gateway setting `sms gateways --remove` drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Removable {
    /// Twilio's token and URL.
    Twilio,
    /// SMS Gateway for Android: its webhook key and its send API.
    Android,
    /// Only the Android gateway's send API (receipts stop being texted back).
    AndroidSend,
    /// The number phones text.
    Number,
}

/// What `sms gateways` is given. Settings not given keep their values.
pub struct GatewayOptions<'a> {
    /// A file holding Twilio's auth token.
    pub twilio_token_file: Option<&'a Path>,
    /// The URL configured at Twilio.
    pub twilio_url: Option<&'a str>,
    /// A file holding SMS Gateway for Android's webhook signing key.
    pub android_key_file: Option<&'a Path>,
    /// That gateway's `message` API URL, for receipts texted back.
    pub android_send_url: Option<&'a str>,
    /// Its API user.
    pub android_send_user: Option<&'a str>,
    /// A file holding its API password.
    pub android_send_password_file: Option<&'a Path>,
    /// The number observers text.
    pub number: Option<&'a str>,
    /// Hours an incomplete message is kept.
    pub expiry_hours: Option<u32>,
    /// Settings to drop.
    pub remove: &'a [Removable],
}

/// `sms gateways`: sets the gateways given and keeps the others (so
/// changing the number on election day keeps every gateway's secret);
/// `--remove` drops one. Secrets are sealed to the organisation's key.
pub fn gateways(at: &Resolved, o: &GatewayOptions<'_>, out: &mut dyn Write) -> Result<()> {
    if let Some(n) = o.number
        && !observer_core::sms::is_gateway_number(n)
    {
        return Err(format!(
            "--number {n:?} is not a phone number (digits, an optional leading +)"
        )
        .into());
    }
    let android_send = match (
        o.android_send_url,
        o.android_send_user,
        o.android_send_password_file,
    ) {
        (Some(u), Some(user), Some(f)) => {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(format!("--android-send-url {u:?} is not an http(s) URL").into());
            }
            Some((u.to_string(), user.to_string(), secret(f)?))
        }
        (None, None, None) => None,
        _ => {
            return Err("texting receipts back through SMS Gateway for Android needs --android-send-url, --android-send-user and --android-send-password-file".into());
        }
    };
    let twilio = match (o.twilio_token_file, o.twilio_url) {
        (Some(f), Some(u)) => Some((secret(f)?, u.to_string())),
        (None, None) => None,
        _ => return Err("Twilio needs both --twilio-token-file and --twilio-url".into()),
    };
    let android = o.android_key_file.map(secret).transpose()?;
    let c = at.open()?;
    let given = GatewaySettings::seal(
        &c.seal.public_key(),
        twilio.as_ref().map(|(t, u)| (t.as_slice(), u.as_str())),
        android.as_deref(),
        android_send
            .as_ref()
            .map(|(u, user, p)| (u.as_str(), user.as_str(), p.as_slice())),
        o.number,
        o.expiry_hours.unwrap_or(crate::sms::DEFAULT_EXPIRY_HOURS),
    )?;
    let kept = GatewaySettings::load(c.storage.as_ref())?.unwrap_or_default();
    let removed = |r: Removable| o.remove.contains(&r);
    let settings = GatewaySettings {
        twilio: merged(removed(Removable::Twilio), given.twilio, kept.twilio),
        android: merged(removed(Removable::Android), given.android, kept.android),
        android_send: merged(
            removed(Removable::Android) || removed(Removable::AndroidSend),
            given.android_send,
            kept.android_send,
        ),
        number: merged(removed(Removable::Number), given.number, kept.number),
        expiry_hours: match (o.expiry_hours, kept.expiry_hours) {
            (Some(_), _) | (None, 0) => given.expiry_hours,
            (None, h) => h,
        },
    };
    if settings.android_send.is_some() && settings.android.is_none() {
        return Err("receipts go back through SMS Gateway for Android only when it is set up: give --android-key-file too".into());
    }
    settings.store(c.storage.as_ref())?;
    let send_url = settings.android_send.as_ref().map(|s| s.url.as_str());
    audited(
        &c,
        "sms.gateways",
        "sms",
        serde_json::json!({
            "twilio_url": settings.twilio.as_ref().map(|t| &t.url),
            "android": settings.android.is_some(),
            "android_send_url": send_url,
            "number": settings.number,
            "expiry_hours": settings.expiry_hours,
            "changed": {
                "twilio": twilio.is_some(),
                "android": android.is_some(),
                "android_send": android_send.is_some(),
                "number": o.number,
                "removed": o.remove.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>(),
            },
        }),
    )?;
    writeln!(
        out,
        "SMS reports taken from: {}{}; incomplete messages kept {} hours",
        match &settings.twilio {
            Some(t) => format!("Twilio at {}/v1/sms/twilio (as {})", c.url, t.url),
            None => "no Twilio".into(),
        },
        if settings.android.is_some() {
            format!(
                ", SMS Gateway for Android at {}/v1/sms/android{}",
                c.url,
                send_url.map_or(String::new(), |u| format!(
                    " (receipts texted back through {u})"
                ))
            )
        } else {
            String::new()
        },
        settings.expiry_hours
    )?;
    match &settings.number {
        Some(n) => writeln!(
            out,
            "phones learn the number {n} at their next sync, and phones enrolled from now on at enrollment"
        )?,
        None => writeln!(out, "no number is set: phones do not offer SMS")?,
    }
    Ok(())
}

/// `sms status`: messages waiting for parts, and the newest log entries.
pub fn status(at: &Resolved, limit: u32, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let status = crate::sms::Status::read(c.storage.as_ref(), limit)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&status)?)?;
        return Ok(());
    }
    let (waiting, log) = (&status.waiting, &status.log);
    writeln!(out, "waiting for parts: {}", waiting.len())?;
    for w in waiting {
        writeln!(
            out,
            "  {} from {}: {} of {} parts since {}",
            w.message,
            w.sender,
            w.held,
            w.total,
            time(w.first_ms)
        )?;
    }
    writeln!(out, "received, newest first:")?;
    for e in log {
        writeln!(
            out,
            "  {} {} via {}: {}: {}",
            time(e.at_ms),
            e.sender,
            e.gateway,
            e.outcome,
            e.detail
        )?;
    }
    Ok(())
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// One setting of `sms gateways`: none if removed, else what was given,
/// else what was kept.
fn merged<T>(removed: bool, given: Option<T>, kept: Option<T>) -> Option<T> {
    if removed { None } else { given.or(kept) }
}

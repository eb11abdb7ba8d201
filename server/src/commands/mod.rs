//! The `observer-server` commands, one function each; `main.rs` only parses
//! the command line and dispatches here. Each writes what it has to say to
//! `out` and returns a [`Result`] whose error `main` prints.

mod access;
mod audit;
mod devices;
pub mod evidence;
mod forms;
pub mod pvt;
mod records;
mod results;
mod serve;
mod setup;
pub mod sms;
mod stations;
mod users;
pub mod witness;
pub mod witnesses;

#[cfg(feature = "demo")]
mod demo;

pub use access::Access;
pub use audit::{audit, audit_verify};
#[cfg(feature = "demo")]
pub use demo::demo;
pub use devices::{assign, devices, enroll, revoke};
pub use forms::{
    FormFormat, export as forms_export, import as forms_import, list as forms_list,
    publish_file as forms_publish,
};
pub use records::{ExportFormat, export, records};
pub use results::{By, compare, import_official, official_versions, results};
pub use serve::serve;
pub use setup::{config_default, config_show, init, media_verify, rekey, verify};
pub use stations::{
    import as stations_import, list as stations_list, versions as stations_versions,
};
pub use users::{
    add as users_add, list as users_list, passwd as users_passwd,
    set_disabled as users_set_disabled, totp as users_totp,
};

/// A command's failure, printed by `main`.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Whether `e` is, or was caused by, writing to an output whose reader
/// went away (`export | head`: the reader has what it wanted).
pub fn closed_output(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return true;
        }
        if let Some(csv) = err.downcast_ref::<csv::Error>()
            && let csv::ErrorKind::Io(io) = csv.kind()
        {
            return io.kind() == std::io::ErrorKind::BrokenPipe;
        }
        cur = err.source();
    }
    false
}

/// Appends what a command did to the audit log, as the operating-system
/// user who ran it.
fn audited(
    c: &crate::coordinator::Coordinator,
    action: &'static str,
    subject: impl Into<String>,
    detail: serde_json::Value,
) -> Result<()> {
    let draft = crate::audit::Draft {
        actor: crate::audit::cli_actor(),
        action,
        subject: subject.into(),
        detail,
    };
    crate::audit::append(c.storage.as_ref(), &c.key, draft, now_ms())?;
    Ok(())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// SIGTERM or Ctrl-C.
async fn interrupted() {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

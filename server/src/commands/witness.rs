//! `witness init|follow|show|serve`: running a witness for another
//! organisation's coordinator. Its data directory (`--data`) and what
//! unlocks its key (`--key-file`, `--passphrase-file` or
//! `OBSERVER_SERVER_PASSPHRASE`) are given like a coordinator's.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;

use observer_core::identity::PublicKey;
use observer_core::merkle::TrustedWitness;

use super::access::Resolved;
use super::{Result, interrupted, now_ms, runtime};
use crate::unlock::{self, Unlock};
use crate::witness::http::{Shared, serve as serve_http};
use crate::witness::state::WitnessStore;

/// `witness init --name NAME`: a new witness with a fresh cosigning key.
pub fn init(at: &Resolved, name: &str, out: &mut dyn Write) -> Result<()> {
    let unlock = at.unlock()?.ok_or(
        "witness init needs a key that is not kept with the data: --key-file PATH on other storage, or a passphrase in OBSERVER_SERVER_PASSPHRASE or --passphrase-file PATH",
    )?;
    std::fs::create_dir_all(&at.data)?;
    let lock = unlock.create(&at.data)?;
    let (_, key) = WitnessStore::create(
        &at.data,
        name,
        lock.keys.as_ref(),
        &lock.description,
        now_ms(),
    )?;
    let vkey = TrustedWitness {
        name: name.to_owned(),
        key: key.public_key(),
    }
    .vkey();
    writeln!(out, "initialised witness {}", at.data.display())?;
    writeln!(out, "witness key  {vkey}")?;
    writeln!(
        out,
        "give this key to the coordinators you witness (observer-server witnesses add --key KEY --url URL)"
    )?;
    Ok(())
}

/// `witness follow --log-key KEY`: cosign the checkpoints of the log
/// that `KEY` (a coordinator key, as `observer-server init` printed it)
/// signs.
pub fn follow(at: &Resolved, log_key: &str, out: &mut dyn Write) -> Result<()> {
    let key: PublicKey = log_key
        .parse()
        .map_err(|e| format!("--log-key {log_key}: {e}"))?;
    let store = WitnessStore::open(&at.data)?;
    let followed = store.follow(&key, now_ms())?;
    writeln!(out, "following {}", followed.origin)?;
    Ok(())
}

/// `witness show`: the witness's key and the logs it follows.
pub fn show(at: &Resolved, out: &mut dyn Write) -> Result<()> {
    let store = WitnessStore::open(&at.data)?;
    let (name, lock) = store.identity()?;
    let key = opened_key(at, &store, &lock)?;
    let vkey = TrustedWitness {
        name,
        key: key.public_key(),
    }
    .vkey();
    writeln!(out, "witness key  {vkey}")?;
    for log in store.logs()? {
        let cosigned = match log.cosigned {
            Some(h) => format!("cosigned size {} root {}", h.size, h.root),
            None => "nothing cosigned yet".into(),
        };
        writeln!(out, "{}  {cosigned}", log.origin)?;
        if log.refusals > 0 {
            writeln!(
                out,
                "  REFUSED {} checkpoint(s) that rewrote this log's history (evidence kept in witness.db)",
                log.refusals
            )?;
        }
    }
    Ok(())
}

/// `witness serve --listen ADDR`: answers `POST /add-checkpoint` until
/// SIGTERM or Ctrl-C.
pub fn serve(at: &Resolved, listen: &str, out: &mut dyn Write) -> Result<()> {
    let store = WitnessStore::open(&at.data)?;
    let (name, lock) = store.identity()?;
    let key = opened_key(at, &store, &lock)?;
    let listener = TcpListener::bind(listen).map_err(|e| format!("--listen {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let follows = store.logs()?.len();
    writeln!(
        out,
        "witness {name} listening on http://{addr}/add-checkpoint for {follows} log(s)"
    )?;
    out.flush()?;
    tracing::info!(%addr, follows, "witness serving");
    let shared = Arc::new(Shared::new(store, key, name));
    runtime()?.block_on(serve_http(shared, listener, interrupted()))?;
    tracing::info!("stopped");
    Ok(())
}

fn opened_key(
    at: &Resolved,
    store: &WitnessStore,
    lock: &[u8],
) -> Result<observer_core::identity::SigningKey> {
    let given: Option<Unlock> = at.unlock()?;
    let opened = unlock::open(&at.data, Some(lock), given.as_ref())?;
    store
        .key(opened.keys())
        .map_err(|_| unlock::wrong(given.as_ref()).into())
}

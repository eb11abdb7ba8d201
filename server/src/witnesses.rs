//! The witnesses a coordinator asks to cosign its checkpoints, and the
//! cosignatures they gave.
//!
//! The list (each witness's verifier key and URL) and each witness's
//! newest cosignature are coordinator values in the database, so every
//! server node pushes to the same witnesses and serves the same witnessed
//! checkpoint. [`push`] sends a witness the current checkpoint with a
//! consistency proof from the size the witness holds (learnt from its 409
//! answer when this node does not know it), checks the cosignature that
//! comes back under the witness's key, and keeps it. [`witnessed`] is the
//! newest checkpoint with the most cosignatures, re-checked as it is read
//! (a cosignature altered in the database is not served).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use observer_core::identity::SigningKey;
use observer_core::merkle::{Checkpoint, TreeHead, TrustedWitness, origin_of};
use observer_core::record::Sha256Digest;
use serde::{Deserialize, Serialize};

use crate::http::AppState;
use crate::proofs;
use crate::storage::{Storage, StorageError};
use crate::witness::AddCheckpoint;
use crate::witness::http::SIZE_MEDIA_TYPE;

/// The coordinator value holding the witness list.
const META_WITNESSES: &str = "witnesses";

/// Most witnesses a coordinator asks (each sync's checkpoint carries a
/// line per witness).
pub const MAX_WITNESSES: usize = 16;

/// Time for a witness to answer.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest answer read from a witness.
const MAX_ANSWER: usize = 4096;

/// A witness this coordinator asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configured {
    /// Its name and key.
    pub witness: TrustedWitness,
    /// Its submission prefix: `add-checkpoint` is posted under it.
    pub url: String,
}

#[derive(Serialize, Deserialize)]
struct StoredWitness {
    key: String,
    url: String,
}

/// A witness's newest cosignature as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cosigned {
    /// The cosigned head's size.
    pub size: u64,
    /// Its root, hex.
    pub root: String,
    /// The signed-note line.
    pub line: String,
    /// The witness's timestamp (POSIX seconds).
    pub time: u64,
}

/// Why the witness list could not be changed or read.
#[derive(Debug, thiserror::Error)]
pub enum WitnessesError {
    /// The key is not a witness key.
    #[error(transparent)]
    Key(#[from] observer_core::merkle::CosignatureError),
    /// The URL is not an http(s) URL without a query.
    #[error("--url {0}: give the witness's http:// or https:// address (no query, no fragment)")]
    Url(String),
    /// Too many witnesses.
    #[error("a coordinator asks at most {MAX_WITNESSES} witnesses")]
    TooMany,
    /// The stored list is damaged.
    #[error("the stored witness list is damaged: {0}")]
    Damaged(String),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn cosigned_key(name: &str) -> String {
    format!("cosigned/{name}")
}

/// The witnesses configured.
pub fn configured(storage: &dyn Storage) -> Result<Vec<Configured>, WitnessesError> {
    let Some(raw) = storage.meta(META_WITNESSES)? else {
        return Ok(Vec::new());
    };
    let stored: Vec<StoredWitness> =
        serde_json::from_slice(&raw).map_err(|e| WitnessesError::Damaged(e.to_string()))?;
    stored
        .into_iter()
        .map(|s| {
            Ok(Configured {
                witness: TrustedWitness::from_vkey(&s.key)
                    .map_err(|e| WitnessesError::Damaged(e.to_string()))?,
                url: s.url,
            })
        })
        .collect()
}

fn store(storage: &dyn Storage, list: &[Configured]) -> Result<(), WitnessesError> {
    let stored: Vec<StoredWitness> = list
        .iter()
        .map(|c| StoredWitness {
            key: c.witness.vkey(),
            url: c.url.clone(),
        })
        .collect();
    storage.set_metas(&[(
        META_WITNESSES,
        serde_json::to_vec(&stored).expect("serialises"),
    )])?;
    Ok(())
}

/// Adds the witness whose verifier key is `vkey` at `url` (or changes
/// the URL of a witness of that name).
pub fn add(storage: &dyn Storage, vkey: &str, url: &str) -> Result<Configured, WitnessesError> {
    let witness = TrustedWitness::from_vkey(vkey)?;
    let url = url.trim_end_matches('/');
    let valid = (url.starts_with("http://") || url.starts_with("https://"))
        && !url.contains(['?', '#', ' ', '\n'])
        && url.len() <= 512
        && url
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty());
    if !valid {
        return Err(WitnessesError::Url(url.to_owned()));
    }
    let added = Configured {
        witness,
        url: url.to_owned(),
    };
    let mut list = configured(storage)?;
    list.retain(|c| c.witness.name != added.witness.name);
    if list.len() >= MAX_WITNESSES {
        return Err(WitnessesError::TooMany);
    }
    list.push(added.clone());
    store(storage, &list)?;
    Ok(added)
}

/// Stops asking the witness named `name`; whether it was asked.
pub fn remove(storage: &dyn Storage, name: &str) -> Result<bool, WitnessesError> {
    let mut list = configured(storage)?;
    let before = list.len();
    list.retain(|c| c.witness.name != name);
    if list.len() == before {
        return Ok(false);
    }
    store(storage, &list)?;
    Ok(true)
}

/// The newest cosignature kept for `name`.
pub fn cosigned(storage: &dyn Storage, name: &str) -> Result<Option<Cosigned>, WitnessesError> {
    storage
        .meta(&cosigned_key(name))?
        .map(|raw| serde_json::from_slice(&raw).map_err(|e| WitnessesError::Damaged(e.to_string())))
        .transpose()
}

/// The checkpoint `key` signs for `head`, as the log and its witnesses
/// see it (signing is deterministic: every node makes the same bytes).
pub fn checkpoint_note(key: &SigningKey, head: TreeHead) -> Vec<u8> {
    Checkpoint {
        origin: origin_of(&key.public_key()),
        head,
    }
    .sign(key)
    .expect("a key's own origin names a log")
}

/// The newest checkpoint carrying the most cosignatures of the configured
/// witnesses, each re-checked, with its head, or `None` when none has
/// cosigned yet.
pub fn witnessed(
    storage: &dyn Storage,
    key: &SigningKey,
) -> Result<Option<(TreeHead, Vec<u8>)>, WitnessesError> {
    let mut groups: HashMap<(u64, String), Vec<(TrustedWitness, Cosigned)>> = HashMap::new();
    for c in configured(storage)? {
        if let Some(cosig) = cosigned(storage, &c.witness.name)? {
            groups
                .entry((cosig.size, cosig.root.clone()))
                .or_default()
                .push((c.witness, cosig));
        }
    }
    let best = groups
        .into_iter()
        .max_by_key(|((size, _), lines)| (lines.len(), *size));
    let Some(((size, root), lines)) = best else {
        return Ok(None);
    };
    let root = hex::decode(&root)
        .ok()
        .and_then(|r| <[u8; 32]>::try_from(r).ok())
        .ok_or_else(|| WitnessesError::Damaged("a cosigned root is not 32 bytes".into()))?;
    let head = TreeHead {
        size,
        root: Sha256Digest::from_bytes(root),
    };
    let mut note = checkpoint_note(key, head);
    for (witness, cosig) in lines {
        let with = [note.as_slice(), cosig.line.as_bytes()].concat();
        match witness.cosigned_at(&with) {
            Ok(Some(_)) => note = with,
            _ => tracing::error!(
                witness = %witness.name,
                "a kept cosignature does not verify; not served"
            ),
        }
    }
    Ok(Some((head, note)))
}

/// What every sync's answer may name: the witnesses' keys (for the
/// updates) and the witnessed checkpoint.
#[derive(Debug, Default)]
pub struct Current {
    /// The configured witnesses' verifier keys.
    pub keys: Vec<String>,
    /// The newest witnessed checkpoint and its head.
    pub witnessed: Option<(TreeHead, String)>,
}

/// How long [`CurrentCache`] answers without reading: a new witness or a
/// new cosignature (every push interval) reaches syncs within it.
const CURRENT_FOR: Duration = Duration::from_secs(2);

/// [`Current`], read at most every `CURRENT_FOR`, so that a burst of
/// syncs does not read the witness list and re-check cosignatures each.
#[derive(Default)]
pub struct CurrentCache {
    known: std::sync::RwLock<Option<(std::time::Instant, Arc<Current>)>>,
}

impl CurrentCache {
    /// The witnesses and the witnessed checkpoint now.
    pub fn get(
        &self,
        storage: &dyn Storage,
        key: &SigningKey,
    ) -> Result<Arc<Current>, WitnessesError> {
        if let Some((at, known)) = &*self.known.read().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < CURRENT_FOR
        {
            return Ok(known.clone());
        }
        let keys: Vec<String> = configured(storage)?
            .iter()
            .map(|c| c.witness.vkey())
            .collect();
        let witnessed = if keys.is_empty() {
            None
        } else {
            witnessed(storage, key)?.map(|(head, note)| {
                (
                    head,
                    String::from_utf8(note).expect("a signed note is UTF-8"),
                )
            })
        };
        let current = Arc::new(Current { keys, witnessed });
        *self.known.write().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), current.clone()));
        Ok(current)
    }
}

/// What a push to a witness came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The witness cosigned the head.
    Cosigned(TreeHead),
    /// It had already cosigned this head.
    Current,
    /// It refused: the log does not extend what it cosigned before.
    Refused(String),
    /// It could not be reached, or answered out of protocol.
    Failed(String),
}

/// Asks one witness to cosign the log's current head, proving it extends
/// what the witness cosigned before. `known` is the size this node last
/// learnt the witness holds.
pub async fn push(
    app: &Arc<AppState>,
    client: &reqwest::Client,
    target: &Configured,
    known: &mut Option<u64>,
) -> Pushed {
    let storage = app.storage.clone();
    let name = target.witness.name.clone();
    let a = app.clone();
    let read = tokio::task::spawn_blocking(move || {
        let head = a.storage.tree_head()?;
        let kept = cosigned(a.storage.as_ref(), &name)?;
        Ok::<_, WitnessesError>((head, kept, checkpoint_note(&a.key, head)))
    })
    .await;
    let (head, kept, note) = match read {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return Pushed::Failed(e.to_string()),
        Err(e) => return Pushed::Failed(e.to_string()),
    };
    if kept.as_ref().is_some_and(|c| c.size == head.size) {
        *known = Some(head.size);
        return Pushed::Current;
    }
    let mut old = known.or(kept.map(|c| c.size)).unwrap_or(0);
    // A stale size is answered with the right one: try again once.
    for _ in 0..2 {
        if old > head.size {
            return Pushed::Refused(format!(
                "the witness holds a tree of {old} records, larger than this log's {}: the log was rolled back or rewritten",
                head.size
            ));
        }
        let st = storage.clone();
        let proof = match tokio::task::spawn_blocking(move || {
            if old == 0 {
                return Ok(Vec::new());
            }
            proofs::consistency(st.as_ref(), old, head.size).map(|p| p.proof)
        })
        .await
        {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Pushed::Failed(e.to_string()),
            Err(e) => return Pushed::Failed(e.to_string()),
        };
        let body = AddCheckpoint {
            old,
            proof,
            note: note.clone(),
        }
        .to_bytes();
        let answer = client
            .post(format!("{}/add-checkpoint", target.url))
            .timeout(PUSH_TIMEOUT)
            .body(body)
            .send()
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => return Pushed::Failed(e.without_url().to_string()),
        };
        let status = answer.status().as_u16();
        let media = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = match read_bounded(answer).await {
            Ok(t) => t,
            Err(e) => return Pushed::Failed(e),
        };
        match status {
            200 => {
                let with = [note.as_slice(), text.as_bytes()].concat();
                let time = match target.witness.cosigned_at(&with) {
                    Ok(Some(t)) => t,
                    Ok(None) => {
                        return Pushed::Failed(
                            "the answer holds no cosignature of the witness's key".into(),
                        );
                    }
                    Err(e) => return Pushed::Failed(e.to_string()),
                };
                let line = match own_line(&text, &target.witness) {
                    Some(l) => l,
                    None => return Pushed::Failed("the answer is not one signature line".into()),
                };
                let kept = Cosigned {
                    size: head.size,
                    root: hex::encode(head.root.as_bytes()),
                    line,
                    time,
                };
                let st = storage.clone();
                let name = target.witness.name.clone();
                let stored = tokio::task::spawn_blocking(move || {
                    st.set_metas(&[(
                        &cosigned_key(&name),
                        serde_json::to_vec(&kept).expect("serialises"),
                    )])
                })
                .await;
                return match stored {
                    Ok(Ok(())) => {
                        *known = Some(head.size);
                        Pushed::Cosigned(head)
                    }
                    Ok(Err(e)) => Pushed::Failed(e.to_string()),
                    Err(e) => Pushed::Failed(e.to_string()),
                };
            }
            409 if media.starts_with(SIZE_MEDIA_TYPE) => match text.trim().parse::<u64>() {
                Ok(size) => {
                    old = size;
                    *known = Some(size);
                }
                Err(_) => return Pushed::Failed("a 409 without a size".into()),
            },
            422 => return Pushed::Refused(text.trim().to_owned()),
            _ => {
                return Pushed::Failed(format!(
                    "answered {status}: {}",
                    text.trim().chars().take(200).collect::<String>()
                ));
            }
        }
    }
    Pushed::Failed("the witness's size kept changing".into())
}

/// The one signature line of `witness` in a witness's answer.
fn own_line(text: &str, witness: &TrustedWitness) -> Option<String> {
    let prefix = format!("\u{2014} {} ", witness.name);
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let line = lines.next()?;
    lines.next().is_none().then(|| format!("{line}\n"))
}

async fn read_bounded(mut answer: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER {
            return Err(format!("the answer is over {MAX_ANSWER} bytes"));
        }
    }
    String::from_utf8(body).map_err(|_| "the answer is not UTF-8".into())
}

/// The client witnesses are reached with. Their answers are checked under
/// their keys, and what is sent is signed and public, so the transport
/// only has to deliver: an `https` witness is checked against the
/// system's roots (this is not the phones' pinned sync channel).
pub fn client() -> Result<reqwest::Client, String> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_platform_verifier()
    .map_err(|e| e.to_string())?
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(PUSH_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

/// Pushes to every configured witness every `interval` until `stop`
/// turns true (re-reading the list each round, so `witnesses add` takes
/// effect without a restart).
pub fn spawn(
    app: Arc<AppState>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let client = client()?;
    tokio::spawn(async move {
        let mut known: HashMap<String, Option<u64>> = HashMap::new();
        loop {
            let st = app.storage.clone();
            let list = tokio::task::spawn_blocking(move || configured(st.as_ref())).await;
            match list {
                Ok(Ok(list)) => {
                    for target in &list {
                        let held = known.entry(target.witness.name.clone()).or_default();
                        let outcome = push(&app, &client, target, held).await;
                        log(&target.witness.name, &outcome);
                    }
                }
                Ok(Err(e)) => tracing::error!(cause = %e, "the witness list cannot be read"),
                Err(e) => tracing::error!(cause = %e, "reading the witness list stopped"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    });
    Ok(())
}

fn log(witness: &str, outcome: &Pushed) {
    match outcome {
        Pushed::Cosigned(head) => {
            tracing::info!(%witness, size = head.size, "checkpoint cosigned by witness")
        }
        Pushed::Current => {}
        Pushed::Refused(why) => tracing::error!(
            %witness, %why,
            "the witness refuses to cosign: it holds a checkpoint this log does not extend (was the database restored from a backup or altered?)"
        ),
        Pushed::Failed(why) => tracing::warn!(%witness, %why, "the witness was not reached"),
    }
}

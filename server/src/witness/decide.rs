//! The decision on one `add-checkpoint` request, without HTTP or storage.

use observer_core::identity::PublicKey;
use observer_core::merkle::{Checkpoint, CheckpointError, TreeHead, Witness, verify_consistency};
use observer_core::record::Sha256Digest;

/// Most consistency proof lines a request may carry (C2SP).
pub const MAX_PROOF_LINES: usize = 63;

/// A log the witness follows: its name and the key its checkpoints are
/// signed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Followed {
    pub origin: String,
    pub key: PublicKey,
}

/// An `add-checkpoint` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the log believes the witness holds.
    pub old: u64,
    /// The consistency proof from `old` to the new checkpoint.
    pub proof: Vec<Sha256Digest>,
    /// The signed checkpoint.
    pub note: Vec<u8>,
}

/// Why the witness does not cosign, each with the status the protocol
/// gives it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// 400: not an `add-checkpoint` body, or an old size above the new one.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 404: a log this witness does not follow.
    #[error("this witness does not follow log {0:?}")]
    UnknownLog(String),
    /// 403: no valid signature of the log's key.
    #[error("the checkpoint is not signed by the key this witness follows the log with")]
    NotSigned,
    /// 409: the old size is not the newest one cosigned (the body of the
    /// answer is that size).
    #[error("the newest checkpoint cosigned for this log has size {latest}")]
    Conflict { latest: u64 },
    /// 422: the new checkpoint does not extend the one cosigned before.
    #[error("the checkpoint does not extend the one cosigned before: {0}")]
    Inconsistent(String),
}

impl Refused {
    /// The HTTP status the protocol gives this refusal.
    pub fn status(&self) -> u16 {
        match self {
            Refused::Malformed(_) => 400,
            Refused::NotSigned => 403,
            Refused::UnknownLog(_) => 404,
            Refused::Conflict { .. } => 409,
            Refused::Inconsistent(_) => 422,
        }
    }
}

impl AddCheckpoint {
    /// Reads a request body: `old N`, up to 63 base64 hashes a line, an
    /// empty line, the signed checkpoint.
    pub fn parse(body: &[u8]) -> Result<Self, Refused> {
        let bad = |why: &str| Refused::Malformed(why.to_owned());
        let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| *n == "0" || (!n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad("the first line is not `old <size>`"))?;
        let proof = lines
            .map(|l| {
                let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, l)
                    .map_err(|_| bad("a proof line is not base64"))?;
                let hash: [u8; 32] = raw
                    .try_into()
                    .map_err(|_| bad("a proof line is not a SHA-256 hash"))?;
                Ok(Sha256Digest::from_bytes(hash))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(bad("more than 63 proof lines"));
        }
        Ok(Self {
            old,
            proof,
            note: note.as_bytes().to_vec(),
        })
    }

    /// The body of this request.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old);
        for h in &self.proof {
            out.push_str(&base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                h.as_bytes(),
            ));
            out.push('\n');
        }
        out.push('\n');
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.note);
        out
    }
}

/// The witness's answer to `request`, given the logs it follows and the
/// newest head it cosigned for the request's log (`None`: never): the
/// origin, the head to keep as the newest cosigned, and the cosignature
/// line to answer with.
pub fn decide(
    followed: &[Followed],
    cosigned: impl FnOnce(&str) -> Option<TreeHead>,
    request: &AddCheckpoint,
    witness: &Witness<'_>,
    now_secs: u64,
) -> Result<(String, TreeHead, Vec<u8>), Refused> {
    let origin =
        Checkpoint::claimed_origin(&request.note).map_err(|e| Refused::Malformed(e.to_string()))?;
    let log = followed
        .iter()
        .find(|f| f.origin == origin)
        .ok_or_else(|| Refused::UnknownLog(origin.clone()))?;
    let new = match Checkpoint::open(&request.note, &origin, &log.key) {
        Ok(c) => c.head,
        Err(CheckpointError::NotSigned) => return Err(Refused::NotSigned),
        Err(e) => return Err(Refused::Malformed(e.to_string())),
    };
    if request.old > new.size {
        return Err(Refused::Malformed(format!(
            "old size {} is above the checkpoint's {}",
            request.old, new.size
        )));
    }
    let held = cosigned(&origin);
    let latest = held.map_or(0, |h| h.size);
    if request.old != latest {
        return Err(Refused::Conflict { latest });
    }
    let inconsistent = |why: String| Refused::Inconsistent(why);
    if new.size == 0 && new.root != Sha256Digest::of(b"") {
        return Err(inconsistent("an empty tree with another root".into()));
    }
    match held {
        None | Some(TreeHead { size: 0, .. }) => {
            if !request.proof.is_empty() {
                return Err(inconsistent("a proof from the empty tree".into()));
            }
        }
        Some(h) => verify_consistency(h.size, new.size, &h.root, &new.root, &request.proof)
            .map_err(|e| inconsistent(e.to_string()))?,
    }
    let line = witness
        .cosign(&request.note, now_secs)
        .map_err(|e| Refused::Malformed(e.to_string()))?;
    Ok((origin, new, line))
}

#[cfg(test)]
mod tests {
    use observer_core::identity::SigningKey;
    use observer_core::merkle::{
        TrustedWitness, consistency_proof, leaf_hash, origin_of, tree_hash,
    };

    use super::*;

    struct Log {
        key: std::rc::Rc<SigningKey>,
        leaves: Vec<Sha256Digest>,
    }

    impl Log {
        fn new() -> Self {
            Self {
                key: std::rc::Rc::new(SigningKey::generate().unwrap()),
                leaves: Vec::new(),
            }
        }
        fn grow(&mut self, n: usize) {
            for _ in 0..n {
                let i = self.leaves.len() as u64;
                self.leaves.push(leaf_hash(&i.to_be_bytes()));
            }
        }
        fn checkpoint(&self) -> Vec<u8> {
            Checkpoint {
                origin: origin_of(&self.key.public_key()),
                head: TreeHead {
                    size: self.leaves.len() as u64,
                    root: tree_hash(&self.leaves),
                },
            }
            .sign(&self.key)
            .unwrap()
        }
        fn request(&self, old: u64) -> AddCheckpoint {
            AddCheckpoint {
                old,
                proof: if old == 0 {
                    vec![]
                } else {
                    consistency_proof(&self.leaves, old).unwrap()
                },
                note: self.checkpoint(),
            }
        }
        fn followed(&self) -> Vec<Followed> {
            vec![Followed {
                origin: origin_of(&self.key.public_key()),
                key: self.key.public_key(),
            }]
        }
    }

    #[test]
    fn a_growing_log_is_cosigned_and_a_rewritten_one_is_refused() {
        let wkey = SigningKey::generate().unwrap();
        let witness = Witness {
            name: "witness.example/w1",
            key: &wkey,
        };
        let trusted = TrustedWitness {
            name: "witness.example/w1".into(),
            key: wkey.public_key(),
        };
        let mut log = Log::new();
        log.grow(5);
        let mut held: Option<TreeHead> = None;
        for (old, grow) in [(0u64, 7usize), (12, 0), (12, 1), (13, 40)] {
            log.grow(grow);
            let request = AddCheckpoint::parse(&log.request(old).to_bytes()).unwrap();
            let (origin, head, line) =
                decide(&log.followed(), |_| held, &request, &witness, 1_700_000_000).unwrap();
            assert_eq!(origin, origin_of(&log.key.public_key()));
            assert_eq!(head.size, log.leaves.len() as u64);
            let cosigned = [request.note.clone(), line].concat();
            assert_eq!(trusted.cosigned_at(&cosigned).unwrap(), Some(1_700_000_000));
            held = Some(head);
        }
        // A stale old size is answered with the newest cosigned one.
        assert_eq!(
            decide(&log.followed(), |_| held, &log.request(12), &witness, 1),
            Err(Refused::Conflict { latest: 53 })
        );
        // History rewritten: a leaf the witness saw is replaced, the log
        // grows, and its proof from the size the witness holds fails.
        let mut forked = Log {
            key: log.key.clone(),
            leaves: log.leaves.clone(),
        };
        forked.leaves[3] = leaf_hash(b"rewritten");
        forked.grow(4);
        let refused = decide(
            &forked.followed(),
            |_| held,
            &forked.request(53),
            &witness,
            1,
        );
        assert!(
            matches!(refused, Err(Refused::Inconsistent(_))),
            "{refused:?}"
        );
        assert_eq!(refused.unwrap_err().status(), 422);
        // The same size with another root is no extension either.
        forked.leaves.truncate(53);
        let same = decide(
            &forked.followed(),
            |_| held,
            &forked.request(53),
            &witness,
            1,
        );
        assert!(matches!(same, Err(Refused::Inconsistent(_))), "{same:?}");
    }

    #[test]
    fn strangers_forgeries_and_malformed_requests_get_their_statuses() {
        let wkey = SigningKey::generate().unwrap();
        let witness = Witness {
            name: "witness.example/w1",
            key: &wkey,
        };
        let mut log = Log::new();
        log.grow(3);
        let other = Log::new();
        let status = |r: Result<(String, TreeHead, Vec<u8>), Refused>| r.unwrap_err().status();
        // A log it does not follow.
        assert_eq!(
            status(decide(
                &other.followed(),
                |_| None,
                &log.request(0),
                &witness,
                1
            )),
            404
        );
        // Its origin, another key's signature.
        let forged = Followed {
            origin: origin_of(&log.key.public_key()),
            key: other.key.public_key(),
        };
        assert_eq!(
            status(decide(&[forged], |_| None, &log.request(0), &witness, 1)),
            403
        );
        // An old size above the new one; a proof from the empty tree.
        let mut above = log.request(0);
        above.old = 4;
        assert_eq!(
            status(decide(&log.followed(), |_| None, &above, &witness, 1)),
            400
        );
        let mut proof = log.request(0);
        proof.proof = vec![Sha256Digest::of(b"x")];
        assert_eq!(
            status(decide(&log.followed(), |_| None, &proof, &witness, 1)),
            422
        );
        for body in [
            &b"old 01\n\nx"[..],
            b"old x\n\n",
            b"old 1\nnot base64!\n\n",
            b"old 1\nAAAA\n\n",
            b"old 1\n",
            b"\xff",
        ] {
            assert!(
                matches!(AddCheckpoint::parse(body), Err(Refused::Malformed(_))),
                "{body:?}"
            );
        }
        let many = format!(
            "old 1\n{}\n",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".repeat(64)
        );
        assert!(matches!(
            AddCheckpoint::parse(many.as_bytes()),
            Err(Refused::Malformed(_))
        ));
    }
}

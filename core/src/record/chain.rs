use std::fmt;

use serde::{Deserialize, Serialize};

use super::{RecordId, VerifiedRecord};

/// The newest record of a device's chain: its seq and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The newest seq.
    pub seq: u64,
    /// The id of that record.
    pub id: RecordId,
}

/// An inclusive range of sequence numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    /// First seq in the range.
    pub first: u64,
    /// Last seq in the range (inclusive).
    pub last: u64,
}

impl fmt::Display for SeqRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{} to {}", self.first, self.last)
        }
    }
}

/// One thing wrong with a chain. Each names exactly where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum ChainFault {
    /// Records in this range were never seen (deleted, or not yet delivered).
    #[error("records {range} are missing")]
    Missing { range: SeqRange },
    /// Record `seq` does not name record `seq - 1` as its prev.
    #[error("record {seq} does not link to record {}: its prev is {found}, but record {} has id {expected}", seq - 1, seq - 1)]
    BrokenLink {
        seq: u64,
        expected: RecordId,
        found: RecordId,
    },
    /// Two different records signed with the same seq: the device forked its
    /// chain (a cloned key or a restored backup).
    #[error("two different records claim seq {seq}: {first} and {second}")]
    Fork {
        seq: u64,
        first: RecordId,
        second: RecordId,
    },
    /// A record came after a record with a higher seq: the sequence was
    /// reordered.
    #[error("record {seq} appears after record {after}: the records were reordered")]
    OutOfOrder { seq: u64, after: u64 },
}

/// What [`verify_chain`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// The newest record seen (or the expected head, if one was given and
    /// not seen).
    pub head: Option<ChainHead>,
    /// How many distinct records were checked.
    pub records: u64,
    /// Everything wrong, in the order found; empty means the chain is whole.
    pub faults: Vec<ChainFault>,
    /// True when more faults existed than [`ChainVerifier::MAX_FAULTS`].
    pub faults_truncated: bool,
}

impl ChainReport {
    /// No record missing, no broken link, no fork, nothing out of order.
    pub fn is_intact(&self) -> bool {
        self.faults.is_empty()
    }

    /// The missing ranges only.
    pub fn missing(&self) -> impl Iterator<Item = SeqRange> + '_ {
        self.faults.iter().filter_map(|f| match f {
            ChainFault::Missing { range } => Some(*range),
            _ => None,
        })
    }
}

/// Checks a chain one record at a time, in constant memory, so a store of a
/// million records can be checked without holding them.
///
/// Records must be pushed in the order they are claimed to be in (ascending
/// seq); anything else is reported as [`ChainFault::OutOfOrder`]. Signatures
/// are not checked here: push only records that passed
/// [`super::verify_envelope`].
#[derive(Debug)]
pub struct ChainVerifier {
    /// The seq the first pushed record should have.
    from: u64,
    last: Option<ChainHead>,
    report: ChainReport,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::starting_at(1)
    }
}

impl ChainVerifier {
    /// At most this many faults are kept; the rest are counted by
    /// `faults_truncated` so a hostile chain cannot exhaust memory.
    pub const MAX_FAULTS: usize = 1000;

    /// A verifier expecting the chain to start at seq 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier for the part of a chain from `seq` on: the first record's
    /// link to its predecessor is left to whoever checked the earlier part.
    pub fn starting_at(seq: u64) -> Self {
        Self {
            from: seq.max(1),
            last: None,
            report: ChainReport::default(),
        }
    }

    fn fault(&mut self, f: ChainFault) {
        if self.report.faults.len() < Self::MAX_FAULTS {
            self.report.faults.push(f);
        } else {
            self.report.faults_truncated = true;
        }
    }

    /// Adds the record with `seq`, `id` and `prev`.
    pub fn push(&mut self, seq: u64, id: RecordId, prev: Option<RecordId>) {
        match self.last {
            None => {
                if seq > self.from {
                    self.fault(ChainFault::Missing {
                        range: SeqRange {
                            first: self.from,
                            last: seq - 1,
                        },
                    });
                }
            }
            Some(last) if seq == last.seq => {
                if id != last.id {
                    self.fault(ChainFault::Fork {
                        seq,
                        first: last.id,
                        second: id,
                    });
                }
                return;
            }
            Some(last) if seq < last.seq => {
                self.fault(ChainFault::OutOfOrder {
                    seq,
                    after: last.seq,
                });
                return;
            }
            Some(last) if seq == last.seq + 1 => {
                if let Some(found) = prev.filter(|p| *p != last.id) {
                    self.fault(ChainFault::BrokenLink {
                        seq,
                        expected: last.id,
                        found,
                    });
                }
            }
            Some(last) => self.fault(ChainFault::Missing {
                range: SeqRange {
                    first: last.seq + 1,
                    last: seq - 1,
                },
            }),
        }
        self.report.records += 1;
        self.last = Some(ChainHead { seq, id });
    }

    /// Adds a record whose contents could not be read (its id is unknown):
    /// its position counts, and the next record's link is left unchecked
    /// rather than reported broken.
    pub fn push_unreadable(&mut self, seq: u64) {
        if let Some(last) = self.last
            && seq <= last.seq
        {
            self.fault(ChainFault::OutOfOrder {
                seq,
                after: last.seq,
            });
            return;
        }
        self.push(seq, RecordId::from_bytes([0; 32]), None);
        self.from = seq + 1;
        self.last = None;
    }

    /// Adds a verified record.
    pub fn push_record(&mut self, r: &VerifiedRecord) {
        self.push(r.body.seq, r.id, r.body.prev);
    }

    /// Ends the check. `expected_head` is the newest `(seq, id)` the device
    /// is known to have signed (from a heartbeat); records after the last one
    /// seen are then reported missing, and a different id at that seq as a
    /// fork.
    pub fn finish(mut self, expected_head: Option<ChainHead>) -> ChainReport {
        if let Some(exp) = expected_head {
            let seen = self.last.map_or(self.from - 1, |h| h.seq);
            match self.last {
                Some(last) if last.seq == exp.seq && last.id != exp.id => {
                    self.fault(ChainFault::Fork {
                        seq: exp.seq,
                        first: last.id,
                        second: exp.id,
                    })
                }
                _ if exp.seq > seen => {
                    self.fault(ChainFault::Missing {
                        range: SeqRange {
                            first: seen + 1,
                            last: exp.seq,
                        },
                    });
                    self.last = Some(exp);
                }
                _ => {}
            }
        }
        self.report.head = self.last;
        self.report
    }
}

/// Checks a device's chain: `records` in the order they are claimed to be in
/// (ascending seq), each already verified with [`super::verify_envelope`]
/// against the same key. Reports exactly which seq numbers are missing and
/// which links are broken.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = &'a VerifiedRecord>,
    expected_head: Option<ChainHead>,
) -> ChainReport {
    let mut v = ChainVerifier::new();
    for r in records {
        v.push_record(r);
    }
    v.finish(expected_head)
}

//! A witness: a process run by an independent party (a second observer
//! organisation, a newspaper) that follows a coordinator's log and cosigns
//! its checkpoints (C2SP `tlog-witness`). When a log asks it to cosign
//! (`add-checkpoint`) it checks the log's signature under the key it
//! follows the log with, compares the old size with the newest one it
//! cosigned, verifies the consistency proof, and only then cosigns. A
//! coordinator that rewrote its history cannot pass: the proof from the
//! size the witness holds fails, the witness refuses, and it keeps the
//! signed checkpoint that did not extend the one before as evidence.
//!
//! [`decide`] is that decision without HTTP or storage; [`state`] keeps,
//! per log, the newest cosigned head and compares and updates it in one
//! transaction (two requests racing must not roll the witness's view
//! back); [`http`] serves `POST /add-checkpoint`.

mod decide;
pub mod http;
pub mod state;

pub use decide::{AddCheckpoint, Followed, MAX_PROOF_LINES, Refused, decide};

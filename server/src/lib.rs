//! `observer-server`: the coordinating server.
//!
//! Enrolls observers' phones, ingests their signed records (verified with
//! the same `observer-core` code the phones use), appends them to an
//! RFC 6962 log and answers with receipts signed by the coordinator key,
//! and shows the coordinator what arrived, from whom, and what is missing.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod backlog;
pub mod body;
pub mod commands;
pub mod config;
pub mod coordinator;
pub mod coverage;
pub mod dashboard;
#[cfg(feature = "demo")]
pub mod demo;
pub mod enrollment;
pub mod evidence;
pub mod guard;
pub mod http;
pub mod i18n;
pub mod ingest;
pub mod integrity;
pub mod limits;
pub mod media;
pub mod metrics;
pub mod proofs;
pub mod proxy_header;
pub mod publish;
pub mod pvt;
pub mod rate;
pub mod reader;
pub mod receipts;
pub mod record_view;
pub mod registry;
pub mod remembered;
pub mod review;
pub mod second_factor;
pub mod serve;
pub mod sms;
pub mod storage;
pub mod tabulate;
pub mod telemetry;
pub mod tls;
pub mod triage;
pub mod unlock;
pub mod updates;
pub mod witness;
pub mod witnesses;

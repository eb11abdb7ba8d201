//! Test and benchmark support that no production build contains.

pub mod fault_proxy;
pub mod postgres;

pub use fault_proxy::FaultProxy;
pub use postgres::PgCluster;

//! Test and benchmark support that no production build contains.

pub mod fault_proxy;
pub mod haproxy;
pub mod postgres;

pub use fault_proxy::FaultProxy;
pub use haproxy::Haproxy;
pub use postgres::PgCluster;

//! Test and benchmark support that no production build contains.

pub mod fault_proxy;

pub use fault_proxy::FaultProxy;

//! Rampart userspace: the kernel seam that loads and drives the XDP data plane, counters, and the
//! network-namespace lab. Only [`kernel`] talks to aya; everything else goes through
//! [`kernel::FilterTables`], which has an in-memory fake for tests.

pub mod control;
pub mod counters;
pub mod daemon;
pub mod detect;
pub mod detector;
pub mod kernel;
/// The L7 engine, its own crate (`rampart-l7`) so proxies embed it without the kernel seam.
pub use rampart_l7 as l7;
pub mod lab;
/// The reverse proxy and its listener, its own crate (`rampart-proxy`) with no runtime of its own.
pub use rampart_proxy as proxy;
pub mod rulesets;
pub mod sampling;

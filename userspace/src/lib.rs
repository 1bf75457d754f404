//! Rampart userspace: the kernel seam that loads and drives the XDP data plane (the only aya
//! user), counters, the detection loop, the daemon, the control socket and the `rampart` CLI.
//! The detector, the L7 engine and the proxy are their own crates, re-exported here under their
//! old paths; the namespace lab is its own crate, `rampart-lab`. Everything outside [`kernel`]
//! reaches the data plane through [`kernel::FilterTables`] (`rampart-tables`), which has an
//! in-memory fake for tests.

pub mod control;
pub mod counters;
pub mod daemon;
pub mod detection_loop;
/// The detector and the sampling maths, their own crate (`rampart-detector`), over the tables seam.
pub use rampart_detector as detector;
pub mod kernel;
/// The L7 engine, its own crate (`rampart-l7`) so proxies embed it without the kernel seam.
pub use rampart_l7 as l7;
/// The reverse proxy and its listener, its own crate (`rampart-proxy`) with no runtime of its own.
pub use rampart_proxy as proxy;
pub mod rulesets;
pub use rampart_detector::sampling;

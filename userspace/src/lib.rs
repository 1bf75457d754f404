//! Rampart userspace: the kernel seam that loads and drives the XDP data plane, counters, the
//! detector, the proxy and the daemon (the namespace lab is its own crate, `rampart-lab`). Only [`kernel`] talks to aya; everything else goes through
//! [`kernel::FilterTables`], which has an in-memory fake for tests.

pub mod control;
pub mod counters;
pub mod daemon;
pub mod detection_loop;
/// The detector and the sampling maths, their own crate (`rampart-detector`), over the tables seam.
pub use rampart_detector as detector;
pub mod kernel;
/// The L7 engine, its own crate (`rampart-l7`) so proxies embed it without the kernel seam.
pub use rampart_l7 as l7;
pub mod proxy;
pub mod rulesets;
pub use rampart_detector::sampling;

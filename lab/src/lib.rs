//! The namespace lab behind `rampart lab` (the README's main command): namespaces for a client,
//! an attacker and the edge, the XDP program attached natively on the edge, bounded traffic, and
//! the counters that show what was dropped where; then `rampart run` end to end under HTTP
//! traffic and attacks ([`http`]).
//!
//! Its own crate (`publish = false`), over the `rampart` library: the kernel seam, the detection
//! loop, counters and control. The `rampart` binary runs it by exec'ing the `rampart-lab` binary
//! beside it (`rampart lab`, `rampart origin`); the lab starts the `rampart` beside itself for
//! `rampart run` ([`rampart_beside`]).

pub mod attacks;
pub mod frames;
pub mod http;
mod http_clients;
pub mod http_payloads;
pub mod http_report;
mod http_setup;
pub mod netns;
pub mod origin;
pub mod process;
pub mod replay;
mod run;
pub mod scenario;
pub mod traffic;
pub mod workerd;

pub use http::{rampart_beside, run_http_phase, HttpLabError, HttpPlan};
pub use http_report::HttpReport;
pub use run::{catch_interrupts, interrupted, run, LabPlan, LabRunError};

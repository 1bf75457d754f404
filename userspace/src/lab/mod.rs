//! The namespace lab behind `rampart lab` (the README's main command): namespaces for a client,
//! an attacker and the edge, the XDP program attached natively on the edge, bounded traffic, and
//! the counters that show what was dropped where.

pub mod attacks;
pub mod frames;
pub mod netns;
pub mod replay;
mod run;
pub mod scenario;
pub mod traffic;

pub use run::{run, LabPlan, LabRunError};

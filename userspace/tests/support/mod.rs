//! Helpers shared by the userspace integration tests.

pub mod h2c;
pub mod raw_http;

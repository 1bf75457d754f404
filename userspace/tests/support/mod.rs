//! Helpers shared by the userspace integration tests.

pub mod raw_http;

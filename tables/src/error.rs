//! The seam's error: what went wrong, in kinds a caller can act on, with the data plane's own
//! error (kernel, map, verifier) kept as the `source()`.

use std::error::Error;
use std::fmt;

/// What kind of failure a [`TablesError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TablesErrorKind {
    /// A table has no room for the entry; nothing was written.
    Full,
    /// The data plane is not there (not attached, or its owner stopped).
    Unavailable,
    /// Any other failure of the data plane.
    Failed,
}

/// A data-plane operation failed.
#[derive(Debug)]
pub struct TablesError {
    kind: TablesErrorKind,
    source: Box<dyn Error + Send + Sync>,
}

impl TablesError {
    /// Wraps the data plane's own error.
    pub fn new(kind: TablesErrorKind, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        TablesError {
            kind,
            source: source.into(),
        }
    }

    pub fn kind(&self) -> TablesErrorKind {
        self.kind
    }
}

impl fmt::Display for TablesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TablesErrorKind::Full => f.write_str("data-plane table full"),
            TablesErrorKind::Unavailable => f.write_str("data plane unavailable"),
            TablesErrorKind::Failed => f.write_str("data-plane operation failed"),
        }
    }
}

impl Error for TablesError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_source_are_kept() {
        let e = TablesError::new(TablesErrorKind::Full, "denylist is full (4096 entries)");
        assert_eq!(e.kind(), TablesErrorKind::Full);
        assert_eq!(e.to_string(), "data-plane table full");
        assert_eq!(
            e.source().unwrap().to_string(),
            "denylist is full (4096 entries)"
        );
    }
}

//! What the engine tells the embedding proxy to do with a request.

use std::time::Duration;

/// The engine's verdict. `Block` and `RateLimited` are final as soon as they are returned;
/// `Continue` and `Route` after the headers are provisional until the body phase has run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Forward to the default upstream.
    Continue,
    /// Refuse with this status and body.
    Block {
        status: u16,
        body: String,
        rule_id: u32,
    },
    /// Refuse with 429 (or the rule's status) and a `Retry-After`.
    RateLimited {
        status: u16,
        retry_after: Duration,
        rule_id: u32,
    },
    /// Forward to this origin pool or Worker handler.
    Route { target: String, rule_id: u32 },
}

impl Decision {
    /// True for a refusal: nothing later can change it.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Decision::Block { .. } | Decision::RateLimited { .. })
    }

    /// The rule that decided, if one did.
    pub fn rule_id(&self) -> Option<u32> {
        match self {
            Decision::Continue => None,
            Decision::Block { rule_id, .. }
            | Decision::RateLimited { rule_id, .. }
            | Decision::Route { rule_id, .. } => Some(*rule_id),
        }
    }

    /// The action name used in metrics and the audit log.
    pub fn action(&self) -> &'static str {
        match self {
            Decision::Continue => "continue",
            Decision::Block { .. } => "block",
            Decision::RateLimited { .. } => "ratelimit",
            Decision::Route { .. } => "route",
        }
    }

    /// The response a proxy sends for a refusal (`None` for forwarding decisions): status,
    /// headers and body.
    pub fn response(&self) -> Option<http::Response<String>> {
        let (status, body, retry) = match self {
            Decision::Block { status, body, .. } => (*status, body.clone(), None),
            Decision::RateLimited {
                status,
                retry_after,
                ..
            } => (
                *status,
                "rate limited\n".to_string(),
                Some(retry_after.as_secs().max(1)),
            ),
            _ => return None,
        };
        let mut b = http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(http::header::CACHE_CONTROL, "no-store");
        if let Some(secs) = retry {
            b = b.header(http::header::RETRY_AFTER, secs.to_string());
        }
        // Status codes come from checked rule files (100..=599) or constants.
        b.body(body).ok()
    }
}

//! What the client is told when proxying fails after the request was accepted: one table from
//! (what failed, on which side) to the gateway's error, so the answer never depends on the order
//! in which an engine happens to report things.

use crate::GatewayError;

/// What went wrong, as far as the answer is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The request body went over the limit while it streamed (413).
    BodyTooLarge,
    /// Holding the body would pass the gateway's buffer budget (503).
    Overloaded,
    /// No connection to the upstream within the connect timeout.
    ConnectTimeout,
    /// The upstream refused, was unroutable, or failed the TLS handshake.
    ConnectFailed,
    /// A read or write timed out on an open connection.
    IoTimeout,
    /// Anything else.
    Other,
}

/// Which side of the proxy the failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureSide {
    Upstream,
    /// The client: nobody is left to answer.
    Downstream,
    /// The gateway itself, or unknown.
    Gateway,
}

/// The error to answer with, or `None` when the client is gone. Connect failures are classified
/// by kind whatever side they are reported on (some engine paths report them as internal).
pub fn classify(kind: FailureKind, side: FailureSide) -> Option<GatewayError> {
    match (kind, side) {
        (FailureKind::BodyTooLarge, _) => Some(GatewayError::BodyTooLarge),
        (FailureKind::Overloaded, _) => Some(GatewayError::Overloaded),
        (FailureKind::ConnectTimeout, _) => Some(GatewayError::UpstreamTimeout),
        (FailureKind::ConnectFailed, _) => Some(GatewayError::UpstreamUnreachable),
        (FailureKind::IoTimeout, FailureSide::Upstream) => Some(GatewayError::UpstreamTimeout),
        (_, FailureSide::Upstream) => Some(GatewayError::UpstreamUnreachable),
        (_, FailureSide::Downstream) => None,
        (_, FailureSide::Gateway) => Some(GatewayError::Internal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureKind::*;
    use FailureSide::*;

    #[test]
    fn every_kind_on_every_side() {
        let table = [
            (BodyTooLarge, Upstream, Some(GatewayError::BodyTooLarge)),
            (BodyTooLarge, Downstream, Some(GatewayError::BodyTooLarge)),
            (BodyTooLarge, Gateway, Some(GatewayError::BodyTooLarge)),
            (Overloaded, Downstream, Some(GatewayError::Overloaded)),
            (Overloaded, Gateway, Some(GatewayError::Overloaded)),
            (
                ConnectTimeout,
                Upstream,
                Some(GatewayError::UpstreamTimeout),
            ),
            (ConnectTimeout, Gateway, Some(GatewayError::UpstreamTimeout)),
            (
                ConnectTimeout,
                Downstream,
                Some(GatewayError::UpstreamTimeout),
            ),
            (
                ConnectFailed,
                Upstream,
                Some(GatewayError::UpstreamUnreachable),
            ),
            (
                ConnectFailed,
                Gateway,
                Some(GatewayError::UpstreamUnreachable),
            ),
            (
                ConnectFailed,
                Downstream,
                Some(GatewayError::UpstreamUnreachable),
            ),
            (IoTimeout, Upstream, Some(GatewayError::UpstreamTimeout)),
            (IoTimeout, Downstream, None),
            (IoTimeout, Gateway, Some(GatewayError::Internal)),
            (Other, Upstream, Some(GatewayError::UpstreamUnreachable)),
            (Other, Downstream, None),
            (Other, Gateway, Some(GatewayError::Internal)),
        ];
        for (kind, side, want) in table {
            assert_eq!(classify(kind, side), want, "{kind:?} on {side:?}");
        }
    }
}

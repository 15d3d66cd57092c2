//! The one shape of every answer the gateway writes itself — errors, challenges, refusals and the
//! few documents it serves — with what each answer means for metrics, the access log and the
//! audit trail. The proxy has exactly one function that writes a [`LocalAnswer`].

use mcpgate_http::{ErrorBody, GatewayError};
use serde_json::Value;

use crate::jsonrpc::Target;

/// A complete answer written by the gateway, never by the upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalAnswer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    /// The stable snake_case reason (logs, metrics, `error.data.reason`); `None` for documents.
    pub reason: Option<&'static str>,
    pub kind: AnswerKind,
    /// A refusal that belongs in the audit trail.
    pub audit: Option<AuditFacts>,
    /// Log-safe hash of a refused token.
    pub token_hash: Option<String>,
    /// End the connection after this answer.
    pub close: bool,
}

/// Which counter an answer moves (besides requests by status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// A document (metadata, a CORS preflight): not an error.
    Document,
    /// `mcpgate_gateway_errors_total`.
    GatewayError,
    /// `mcpgate_auth_failures_total` (a missing, malformed or refused token).
    AuthFailure,
    /// `mcpgate_policy_denials_total` and `mcpgate_gateway_errors_total`.
    PolicyDenial,
}

/// What the audit line of a refusal says beyond who and where.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditFacts {
    pub reason: &'static str,
    pub method: Option<String>,
    pub target: Option<Target>,
}

impl LocalAnswer {
    /// A document the gateway serves itself.
    pub fn document(status: u16, content_type: &'static str, body: Vec<u8>) -> LocalAnswer {
        LocalAnswer {
            status,
            content_type,
            body,
            headers: Vec::new(),
            reason: None,
            kind: AnswerKind::Document,
            audit: None,
            token_hash: None,
            close: false,
        }
    }

    /// A JSON-RPC error document (codes in [`mcpgate_http::codes`]).
    pub fn error(
        status: u16,
        code: i64,
        reason: &'static str,
        message: impl Into<String>,
        id: Option<Value>,
    ) -> LocalAnswer {
        let body = ErrorBody::new(status, code, message, reason)
            .with_id(id.unwrap_or(Value::Null))
            .to_json();
        LocalAnswer {
            reason: Some(reason),
            kind: AnswerKind::GatewayError,
            ..LocalAnswer::document(status, "application/json", body)
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> LocalAnswer {
        self.headers.push((name, value.into()));
        self
    }

    pub fn counted_as(mut self, kind: AnswerKind) -> LocalAnswer {
        self.kind = kind;
        self
    }

    pub fn audited(mut self, facts: AuditFacts) -> LocalAnswer {
        self.audit = Some(facts);
        self
    }

    /// End the connection afterwards (the request may be half-read).
    pub fn closing(mut self) -> LocalAnswer {
        self.close = true;
        self
    }
}

impl From<GatewayError> for LocalAnswer {
    fn from(e: GatewayError) -> LocalAnswer {
        let answer = LocalAnswer {
            reason: Some(e.reason()),
            kind: AnswerKind::GatewayError,
            ..LocalAnswer::document(e.status(), "application/json", e.body().to_json())
        };
        match e {
            // Load shed: the same request will likely succeed in a moment.
            GatewayError::Overloaded => answer.with_header("retry-after", "1"),
            _ => answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_jsonrpc_documents_with_reason_and_id() {
        let a = LocalAnswer::error(404, -32011, "session_not_found", "gone", Some(7.into()));
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], -32011);
        assert_eq!(v["error"]["data"]["reason"], "session_not_found");
        assert_eq!(a.reason, Some("session_not_found"));
        assert_eq!(a.kind, AnswerKind::GatewayError);
    }

    #[test]
    fn gateway_errors_keep_their_status_and_reason() {
        let a = LocalAnswer::from(GatewayError::HeadersTooLarge);
        assert_eq!((a.status, a.reason), (431, Some("headers_too_large")));
        assert!(!a.close);
        assert!(a.closing().close);
    }
}

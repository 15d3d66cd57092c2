//! The error answers the gateway produces itself (no route, bad path, body too large, upstream
//! down, …). Every body is a JSON-RPC 2.0 error object, so MCP clients can parse it, with the HTTP
//! status and a stable machine-readable `reason` under `error.data`.

use serde_json::{json, Value};

use crate::codes;

/// Errors the gateway answers on its own, each with a fixed status and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    BadPath,
    BadRequest,
    BodyNotAllowed,
    /// A `Connection` header that names a field the gateway must send, or a non-token.
    BadConnectionHeader,
    NoRoute,
    MethodNotAllowed,
    OriginNotAllowed,
    BodyTooLarge,
    HeadersTooLarge,
    UpstreamUnreachable,
    UpstreamTimeout,
    UpstreamBadResponse,
    ShuttingDown,
    Overloaded,
    Internal,
}

impl GatewayError {
    pub fn status(self) -> u16 {
        match self {
            GatewayError::BadPath
            | GatewayError::BadRequest
            | GatewayError::BodyNotAllowed
            | GatewayError::BadConnectionHeader => 400,
            GatewayError::NoRoute => 404,
            GatewayError::OriginNotAllowed => 403,
            GatewayError::MethodNotAllowed => 405,
            GatewayError::BodyTooLarge => 413,
            GatewayError::HeadersTooLarge => 431,
            GatewayError::UpstreamUnreachable | GatewayError::UpstreamBadResponse => 502,
            GatewayError::ShuttingDown | GatewayError::Overloaded => 503,
            GatewayError::UpstreamTimeout => 504,
            GatewayError::Internal => 500,
        }
    }

    /// Stable snake_case reason for logs, metrics and `error.data.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            GatewayError::BadPath => "bad_path",
            GatewayError::BadRequest => "bad_request",
            GatewayError::BodyNotAllowed => "body_not_allowed",
            GatewayError::BadConnectionHeader => "bad_connection_header",
            GatewayError::NoRoute => "no_route",
            GatewayError::MethodNotAllowed => "method_not_allowed",
            GatewayError::OriginNotAllowed => "origin_not_allowed",
            GatewayError::BodyTooLarge => "body_too_large",
            GatewayError::HeadersTooLarge => "headers_too_large",
            GatewayError::UpstreamUnreachable => "upstream_unreachable",
            GatewayError::UpstreamTimeout => "upstream_timeout",
            GatewayError::UpstreamBadResponse => "upstream_bad_response",
            GatewayError::ShuttingDown => "shutting_down",
            GatewayError::Overloaded => "overloaded",
            GatewayError::Internal => "internal_error",
        }
    }

    fn message(self) -> &'static str {
        match self {
            GatewayError::BadPath => "the request path is not acceptable",
            GatewayError::BadRequest => "malformed request",
            GatewayError::BodyNotAllowed => {
                "GET and DELETE requests carry no body on an MCP endpoint"
            }
            GatewayError::BadConnectionHeader => {
                "the Connection header names a field that cannot be dropped, or is malformed"
            }
            GatewayError::NoRoute => "no MCP endpoint at this path",
            GatewayError::MethodNotAllowed => "method not allowed on this endpoint",
            GatewayError::OriginNotAllowed => "requests from this Origin are not allowed",
            GatewayError::BodyTooLarge => "request body exceeds the gateway's limit",
            GatewayError::HeadersTooLarge => "request headers exceed the gateway's limit",
            GatewayError::UpstreamUnreachable => {
                "the MCP server behind this gateway is unreachable"
            }
            GatewayError::UpstreamTimeout => {
                "the MCP server behind this gateway did not answer in time"
            }
            GatewayError::UpstreamBadResponse => {
                "the MCP server behind this gateway sent an invalid response"
            }
            GatewayError::ShuttingDown => "the gateway is shutting down",
            GatewayError::Overloaded => {
                "the gateway holds as many request bodies as it may; retry shortly"
            }
            GatewayError::Internal => "internal gateway error",
        }
    }

    /// JSON-RPC error code ([`crate::codes`]): the standard ones where they fit, else ours.
    fn jsonrpc_code(self) -> i64 {
        match self {
            GatewayError::BadRequest
            | GatewayError::BadPath
            | GatewayError::BodyNotAllowed
            | GatewayError::BadConnectionHeader => codes::INVALID_REQUEST,
            GatewayError::NoRoute => codes::NO_ROUTE,
            GatewayError::MethodNotAllowed => codes::METHOD_NOT_ALLOWED,
            GatewayError::OriginNotAllowed => codes::FORBIDDEN,
            GatewayError::BodyTooLarge | GatewayError::HeadersTooLarge => codes::TOO_LARGE,
            GatewayError::UpstreamUnreachable
            | GatewayError::UpstreamTimeout
            | GatewayError::UpstreamBadResponse => codes::UPSTREAM_UNAVAILABLE,
            GatewayError::ShuttingDown | GatewayError::Overloaded => codes::UNAVAILABLE,
            GatewayError::Internal => codes::INTERNAL_ERROR,
        }
    }

    pub fn body(self) -> ErrorBody {
        ErrorBody::new(
            self.status(),
            self.jsonrpc_code(),
            self.message(),
            self.reason(),
        )
    }
}

/// A rendered error answer: status plus a JSON-RPC error document.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorBody {
    pub status: u16,
    pub code: i64,
    pub message: String,
    pub reason: String,
    /// The JSON-RPC id of the request, when known; `null` otherwise.
    pub id: Value,
}

impl ErrorBody {
    pub fn new(
        status: u16,
        code: i64,
        message: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ErrorBody {
            status,
            code,
            message: message.into(),
            reason: reason.into(),
            id: Value::Null,
        }
    }

    pub fn with_id(mut self, id: Value) -> Self {
        self.id = id;
        self
    }

    pub fn to_json(&self) -> Vec<u8> {
        let doc = json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": {
                "code": self.code,
                "message": self.message,
                "data": { "status": self.status, "reason": self.reason },
            }
        });
        serde_json::to_vec(&doc).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_jsonrpc_errors_with_status_and_reason() {
        for e in [
            GatewayError::NoRoute,
            GatewayError::BodyTooLarge,
            GatewayError::UpstreamUnreachable,
            GatewayError::UpstreamTimeout,
        ] {
            let body = e.body();
            let v: Value = serde_json::from_slice(&body.to_json()).unwrap();
            assert_eq!(v["jsonrpc"], "2.0");
            assert!(v["id"].is_null());
            assert_eq!(v["error"]["data"]["status"], e.status());
            assert_eq!(v["error"]["data"]["reason"], e.reason());
            assert!(v["error"]["code"].as_i64().unwrap() < 0);
        }
    }

    #[test]
    fn statuses_match_http_semantics() {
        assert_eq!(GatewayError::NoRoute.status(), 404);
        assert_eq!(GatewayError::BodyTooLarge.status(), 413);
        assert_eq!(GatewayError::UpstreamUnreachable.status(), 502);
        assert_eq!(GatewayError::UpstreamTimeout.status(), 504);
    }

    #[test]
    fn id_is_carried() {
        let b = GatewayError::BadRequest.body().with_id(json!(7));
        let v: Value = serde_json::from_slice(&b.to_json()).unwrap();
        assert_eq!(v["id"], 7);
    }
}

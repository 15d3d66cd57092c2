//! The gateway's answers to a request over its budget, or one whose budget could not be asked:
//! a 429 JSON-RPC error with `Retry-After` and the `RateLimit` headers; for `tools/call`
//! optionally a tool result with `isError: true` (what agents handle best: the model reads it
//! and waits, where some SDKs treat an HTTP error as a broken transport); a 503 when the store
//! failed and `on_store_error: deny`.

use mcpgate_config::ToolsCallAnswer;
use mcpgate_http::codes;
use mcpgate_mcp::answer::{AuditFacts, LocalAnswer};
use mcpgate_mcp::jsonrpc::Target;
use serde_json::{json, Value};

use crate::headers::{policy_item, retry_after, state_item};
use crate::RuleState;

/// The reason of a refusal over budget (metrics, logs, `error.data.reason`, audit).
pub const RATE_LIMITED: &str = "rate_limited";
/// The reason of a refusal because the store did not answer and `on_store_error: deny`.
pub const STORE_UNAVAILABLE: &str = "rate_limit_store_unavailable";

/// What the refused request was, as far as the gateway read it.
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub id: Option<Value>,
    pub method: Option<String>,
    pub target: Option<Target>,
}

impl Call {
    fn audit(&self, reason: &'static str) -> AuditFacts {
        AuditFacts {
            reason,
            method: self.method.clone(),
            target: self.target.clone(),
        }
    }

    fn is_tool_call(&self) -> bool {
        matches!(self.target, Some(Target::Tool(_)))
    }
}

/// Over `state`'s budget.
pub fn limited(state: &RuleState, call: Call, shape: ToolsCallAnswer) -> LocalAnswer {
    let wait = retry_after(&state.decision);
    let answer = if shape == ToolsCallAnswer::ToolError && call.is_tool_call() {
        tool_error(&call, &wait)
    } else {
        let message = format!(
            "rate limit \"{}\" exceeded; retry after {wait} s",
            state.rule
        );
        LocalAnswer::error(
            429,
            codes::RATE_LIMITED,
            RATE_LIMITED,
            message,
            call.id.clone(),
        )
    };
    answer
        .with_header("retry-after", wait)
        .with_header("ratelimit-policy", policy_item(&state.rule, state.limit))
        .with_header("ratelimit", state_item(&state.rule, &state.decision))
        .audited(call.audit(RATE_LIMITED))
}

/// A `tools/call` result the model can read: the call did not run, and when to try again.
fn tool_error(call: &Call, wait: &str) -> LocalAnswer {
    let text = format!("Rate limit exceeded: the tool was not called. Retry after {wait} seconds.");
    let body = json!({
        "jsonrpc": "2.0",
        "id": call.id.clone().unwrap_or(Value::Null),
        "result": {
            "content": [{"type": "text", "text": text}],
            "isError": true,
            "_meta": {"retryAfterSeconds": wait.parse::<u64>().unwrap_or(1)},
        },
    });
    LocalAnswer {
        reason: Some(RATE_LIMITED),
        ..LocalAnswer::document(200, "application/json", body.to_string().into_bytes())
    }
    .counted_as(mcpgate_mcp::answer::AnswerKind::GatewayError)
}

/// The store did not answer and `on_store_error: deny`: fail closed, retry soon.
pub fn store_unavailable(call: Call) -> LocalAnswer {
    let message = "the rate-limit store is unavailable; retry later";
    LocalAnswer::error(
        503,
        codes::UNAVAILABLE,
        STORE_UNAVAILABLE,
        message,
        call.id.clone(),
    )
    .with_header("retry-after", "1")
    .audited(call.audit(STORE_UNAVAILABLE))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::gcra::{decide, Limit};

    fn over() -> RuleState {
        let limit = Limit::new(60, Duration::from_secs(60), 1);
        let (_, tat) = decide(None, 0, limit);
        RuleState {
            rule: "tool-calls".into(),
            limit,
            decision: decide(tat, 0, limit).0,
        }
    }

    fn tool_call() -> Call {
        Call {
            id: Some(json!(42)),
            method: Some("tools/call".into()),
            target: Some(Target::Tool("delete_repo".into())),
        }
    }

    fn header<'a>(a: &'a LocalAnswer, name: &str) -> &'a str {
        a.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn over_budget_is_a_429_jsonrpc_error_with_the_ietf_headers() {
        let a = limited(&over(), tool_call(), ToolsCallAnswer::Http429);
        assert_eq!(a.status, 429);
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["error"]["code"], codes::RATE_LIMITED);
        assert_eq!(v["error"]["data"]["reason"], "rate_limited");
        assert_eq!(header(&a, "retry-after"), "1");
        assert_eq!(header(&a, "ratelimit-policy"), "\"tool-calls\";q=1;w=1");
        assert_eq!(header(&a, "ratelimit"), "\"tool-calls\";r=0;t=1");
        assert_eq!(a.audit.as_ref().unwrap().reason, "rate_limited");
    }

    #[test]
    fn a_tool_call_may_be_answered_as_a_tool_error_the_model_can_read() {
        let a = limited(&over(), tool_call(), ToolsCallAnswer::ToolError);
        assert_eq!(a.status, 200);
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["result"]["isError"], true);
        assert!(v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Retry after 1 seconds"));
        assert_eq!(a.reason, Some("rate_limited"));
        assert_eq!(header(&a, "retry-after"), "1");
        // Anything but a tool call stays an HTTP 429.
        let list = Call {
            target: None,
            method: Some("tools/list".into()),
            ..tool_call()
        };
        assert_eq!(
            limited(&over(), list, ToolsCallAnswer::ToolError).status,
            429
        );
    }

    #[test]
    fn a_failed_store_under_deny_is_a_503_to_retry() {
        let a = store_unavailable(tool_call());
        assert_eq!(
            (a.status, a.reason),
            (503, Some("rate_limit_store_unavailable"))
        );
        assert_eq!(header(&a, "retry-after"), "1");
    }
}

//! When proxying fails after the request was accepted: a held body's refusal (by policy or over
//! a rate limit), or pingora's error
//! mapped onto `mcpgate_http::failure::classify` and answered as a gateway error.

use mcpgate_http::failure::{classify, FailureKind, FailureSide};
use mcpgate_mcp::answer::LocalAnswer;
use pingora::{Error, ErrorSource, ErrorType};

use super::ctx::{BodyState, RequestCtx};

/// The answer for a failed request, or `None` when the client is gone.
pub fn failure_answer(e: &Error, ctx: &mut RequestCtx) -> Option<LocalAnswer> {
    if let Some(refusal) = ctx.rate.refusal.take() {
        return Some(refusal);
    }
    if let BodyState::Refused(refusal) = std::mem::replace(&mut ctx.body, BodyState::Released) {
        let metadata_url = ctx.route().map_or("", |r| r.auth.metadata_url());
        return Some(refusal.answer(metadata_url));
    }
    let err = classify(kind(e.etype()), side(e.esource()))?;
    Some(LocalAnswer::from(err).closing())
}

fn kind(t: &ErrorType) -> FailureKind {
    match t {
        ErrorType::HTTPStatus(413) => FailureKind::BodyTooLarge,
        ErrorType::HTTPStatus(503) => FailureKind::Overloaded,
        ErrorType::ConnectTimedout => FailureKind::ConnectTimeout,
        ErrorType::ConnectRefused
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::TLSHandshakeFailure => FailureKind::ConnectFailed,
        ErrorType::ReadTimedout | ErrorType::WriteTimedout => FailureKind::IoTimeout,
        _ => FailureKind::Other,
    }
}

fn side(s: &ErrorSource) -> FailureSide {
    match s {
        ErrorSource::Upstream => FailureSide::Upstream,
        ErrorSource::Downstream => FailureSide::Downstream,
        _ => FailureSide::Gateway,
    }
}

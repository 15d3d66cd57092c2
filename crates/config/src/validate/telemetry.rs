//! Raw → model for the `tracing:` section (OTLP export of request spans).

use crate::raw::Str;
use crate::telemetry::{RawTracing, Tracing, DEFAULT_SERVICE_NAME};

use super::ctx::{Ctx, UrlRules};

pub(crate) fn tracing(cx: &mut Ctx, raw: &RawTracing) -> Option<Tracing> {
    let rules = UrlRules {
        path: true,
        query: false,
    };
    let endpoint = cx
        .required("tracing.otlp_endpoint", &raw.otlp_endpoint)
        .and_then(|s| cx.http_url("tracing.otlp_endpoint", s, rules));
    let service_name = match &raw.service_name {
        None => Some(DEFAULT_SERVICE_NAME.to_owned()),
        Some(s) => cx.non_empty("tracing.service_name", s),
    };
    let sample_ratio = match &raw.sample_ratio {
        None => Some(1.0),
        Some(s) => cx.parse("tracing.sample_ratio", s, "ratio", parse_ratio),
    };
    let headers = headers(cx, raw.headers.as_ref());
    Some(Tracing {
        traces_url: traces_url(endpoint?),
        service_name: service_name?,
        sample_ratio: sample_ratio?,
        headers: headers?,
    })
}

/// OTLP/HTTP: the signal path `v1/traces` is appended to the base endpoint.
fn traces_url(mut base: url::Url) -> url::Url {
    let path = format!("{}/v1/traces", base.path().trim_end_matches('/'));
    base.set_path(&path);
    base
}

fn parse_ratio(v: &str) -> Result<f64, String> {
    match v.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(" (expected a number from 0.0 to 1.0)".into()),
    }
}

/// Header names must be HTTP tokens (RFC 9110 §5.6.2); values are secrets without line breaks.
fn headers(
    cx: &mut Ctx,
    raw: Option<&std::collections::BTreeMap<String, Str>>,
) -> Option<Vec<(String, crate::model::Secret)>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (name, value) in raw.into_iter().flatten() {
        let path = format!("tracing.headers.{name}");
        if name.is_empty() || !name.bytes().all(is_token_char) {
            cx.err(&path, "not a valid HTTP header name");
            ok = false;
            continue;
        }
        match cx.string(&path, value) {
            Some(v) if v.bytes().any(|b| b.is_ascii_control()) => {
                cx.err(&path, "value must not contain control characters");
                ok = false;
            }
            Some(v) => out.push((name.to_ascii_lowercase(), crate::model::Secret::new(v))),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

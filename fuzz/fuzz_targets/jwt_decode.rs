//! Fuzzes JWS compact decoding of access tokens (`mcpgate_auth::fuzzing::jwt_decode`: the
//! validator's steps before it needs keys).
//!
//! Input: a byte choosing the form, then either the token text (`.`) or, for anything else, a
//! header JSON and a claims JSON separated by a newline, which the target base64url-encodes into
//! a token with a fixed signature (so mutations reach the JSON and claim checks).
//! Properties (module docs of `jwt`, RFC 7515/8725): a decoded token has exactly three parts,
//! each canonical unpadded base64url; header and claims are objects the strict parser accepts;
//! the algorithm, when one is allowed, is the header's `alg` string and never `none` or HMAC.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use mcpgate_auth::fuzzing::jwt_decode;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let token = if form == b'.' {
        let Ok(t) = std::str::from_utf8(rest) else {
            return;
        };
        t.to_owned()
    } else {
        let (h, c) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &b"{}"[..]),
        };
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(h),
            URL_SAFE_NO_PAD.encode(c)
        )
    };
    let Ok(decoded) = jwt_decode(&token) else {
        return;
    };
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token:?}");
    let mut json = Vec::new();
    for p in &parts {
        let bytes = URL_SAFE_NO_PAD
            .decode(p)
            .expect("accepted a part that is not base64url");
        assert_eq!(
            &URL_SAFE_NO_PAD.encode(&bytes),
            p,
            "non-canonical base64url accepted"
        );
        json.push(bytes);
    }
    let limits = mcpgate_json::Limits::default();
    let header = mcpgate_json::parse_object(&json[0], limits).expect("header not strict JSON");
    mcpgate_json::parse_object(&json[1], limits).expect("claims not strict JSON");
    assert!(
        !header.contains_key("crit") && !header.contains_key("enc") && !header.contains_key("zip")
    );
    if let Some(alg) = decoded.alg {
        let named = header
            .get("alg")
            .and_then(Value::as_str)
            .expect("alg from nowhere");
        assert_eq!(format!("{alg:?}"), named);
        assert!(
            !named.eq_ignore_ascii_case("none") && !named.to_ascii_uppercase().starts_with("HS")
        );
    }
    assert_eq!(
        decoded.kid.as_deref(),
        header.get("kid").and_then(Value::as_str)
    );
});

//! Fuzzes JWKS parsing and key selection (`mcpgate_auth::fuzzing::jwks_parse`: strict JSON, key
//! filtering, lookup by `kid` and algorithm, and a verification with every key found).
//!
//! Properties (module docs of `keys`): a document without a `keys` array is an error; every key
//! in the array is either kept or counted as skipped; symmetric (`oct`) keys, encryption keys
//! and keys not allowed to verify are always skipped, so HMAC can never be selected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_auth::fuzzing::jwks_parse;
use serde_json::Value;

/// Keys the documented rules drop whatever else they say.
fn never_usable(key: &Value) -> bool {
    let Some(k) = key.as_object() else {
        return true;
    };
    let s = |f: &str| k.get(f).and_then(Value::as_str);
    s("kty") == Some("oct")
        || k.get("use").is_some_and(|u| u.as_str() != Some("sig"))
        || k.get("key_ops")
            .and_then(Value::as_array)
            .is_some_and(|ops| !ops.iter().any(|o| o == "verify"))
}

fuzz_target!(|data: &[u8]| {
    // A signature the size of an RSA-2048 one, and one the size of an ES256 one.
    let result = jwks_parse(data, &[0x5a; 256]);
    let _ = jwks_parse(data, &[0xa5; 64]);
    let limits = mcpgate_json::Limits {
        max_depth: 32,
        max_bytes: 512 * 1024,
    };
    let doc = mcpgate_json::parse_object(data, limits);
    let keys = doc
        .as_ref()
        .ok()
        .and_then(|d| d.get("keys"))
        .and_then(Value::as_array);
    match (result, keys) {
        (Ok(s), Some(keys)) => {
            assert_eq!(
                s.usable + s.skipped,
                keys.len(),
                "a key neither kept nor skipped"
            );
            let dropped = keys.iter().filter(|k| never_usable(k)).count();
            assert!(s.skipped >= dropped, "an oct/enc/non-verify key was kept");
        }
        (Ok(_), None) => panic!("a document without a keys array was accepted"),
        (Err(_), _) => {}
    }
});

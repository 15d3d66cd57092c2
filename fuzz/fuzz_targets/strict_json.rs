//! Fuzzes the strict JSON parser every security decision reads through (`mcpgate_json::parse`).
//!
//! Properties (from the crate docs and tests): the size cap is checked before parsing; an
//! accepted document is one serde_json reads the same way (so the upstream cannot read another
//! document out of it), holds no nesting deeper than the limit, and survives a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_json::{parse, JsonError, Limits};
use serde_json::Value;

/// Nesting of arrays and objects as `Limits::max_depth` counts it (`[[1]]` is 2; scalars add none).
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let small = Limits {
        max_depth: 4,
        max_bytes: 256,
    };
    for limits in [Limits::default(), small] {
        let got = parse(data, limits);
        if data.len() > limits.max_bytes {
            assert_eq!(
                got,
                Err(JsonError::TooLarge {
                    limit: limits.max_bytes
                })
            );
            continue;
        }
        let Ok(v) = got else { continue };
        // Strict is a subset of serde_json: the same bytes must give the same value there
        // (a document read two ways is the bypass this parser exists to prevent).
        let lenient: Value =
            serde_json::from_slice(data).expect("strictly accepted but serde_json refuses");
        assert_eq!(lenient, v, "strict and serde_json read different documents");
        assert!(depth(&v) <= limits.max_depth, "nesting beyond the limit");
        // serde_json (without `float_roundtrip`) may read its own shortest float form back one
        // ULP off; no decision reads floats that finely, so floats are left out of the round trip.
        if has_float(&v) {
            continue;
        }
        let again = serde_json::to_vec(&v).expect("serialise");
        let reparsed = parse(&again, Limits::default()).expect("own output refused");
        assert_eq!(reparsed, v, "round trip changed the value");
    }
});

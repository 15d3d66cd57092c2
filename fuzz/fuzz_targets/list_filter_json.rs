//! Fuzzes `*/list` filtering of `application/json` answers (`filter_json`, `ListFilter::Json`).
//!
//! Input: a byte choosing the list kind (`T`ools, `P`rompts, `R`esources, templates `M`), then
//! the upstream answer. Properties (module docs): never a panic; a filtered answer is JSON whose
//! list holds only items the policy allows, each naming itself with the judged member, each
//! copied verbatim from the upstream's answer; the streaming `ListFilter` gives the same bytes
//! however the answer is chunked, and passes answers it cannot filter untouched.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mcpgate_fuzz::{allow, assert_only_allowed, chunks, list_kind, list_shape};
use mcpgate_mcp::filter::{filter_json, ListFilter};
use serde_json::value::RawValue;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = list_kind(selector);
    let filtered = filter_json(kind, body, &allow);
    if let Some(out) = &filtered {
        let v: Value = serde_json::from_slice(out).expect("filtered answer is not JSON");
        assert_only_allowed(kind, &v);
        let (array, _) = list_shape(kind);
        #[derive(serde::Deserialize)]
        struct Top<'a> {
            #[serde(borrow)]
            result: std::collections::BTreeMap<String, &'a RawValue>,
        }
        let top: Top = serde_json::from_slice(out).expect("filtered answer has no result");
        let items: Vec<&RawValue> = serde_json::from_str(top.result[array].get()).unwrap();
        for item in items {
            let raw = item.get().as_bytes();
            assert!(
                body.windows(raw.len()).any(|w| w == raw),
                "kept item {} is not verbatim from the upstream",
                item.get()
            );
        }
    } else if let Ok(v) = serde_json::from_slice::<Value>(body) {
        // Passed through untouched: then there is no list of this kind a client could read.
        let (array, _) = list_shape(kind);
        let is_list = v
            .get("result")
            .and_then(|r| r.get(array))
            .is_some_and(Value::is_array);
        assert!(!is_list, "a readable list answer passed unfiltered");
    }
    let expected = filtered.map_or_else(|| Bytes::copy_from_slice(body), Bytes::from);
    let mut f = ListFilter::new(kind, false);
    let mut got = Vec::new();
    let pieces = chunks(&data[..1], body, 64);
    for p in &pieces {
        got.extend_from_slice(&f.push(Some(Bytes::copy_from_slice(p)), false, &allow));
    }
    got.extend_from_slice(&f.push(None, true, &allow));
    assert_eq!(got, expected, "chunked ListFilter differs from filter_json");
});

//! Fuzzes `*/list` filtering of `application/json` answers (`filter_json`, `ListFilter::Json`).
//!
//! Input: a byte choosing the list kind (`T`ools, `P`rompts, `R`esources, templates `M`), then
//! the upstream answer. Properties (module docs): never a panic; a filtered answer is JSON whose
//! list holds only items the policy allows, each naming itself with the judged member, each
//! copied verbatim from the upstream's answer; the streaming `ListFilter` gives the same bytes
//! however the answer is chunked; an answer that is not a list passes untouched, and one that
//! may carry a list but cannot be read is replaced by a `list_unfilterable` error (fail closed).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mcpgate_fuzz::{allow, assert_only_allowed, chunks, list_kind, list_shape};
use mcpgate_mcp::filter::{filter_json, filter_message, ListFilter, Verdict, Watch};
use mcpgate_mcp::jsonrpc::ListKind;
use serde_json::value::RawValue;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = list_kind(selector);
    let verdict = filter_message(Watch::Answer(kind), body, &allow);
    match &verdict {
        Verdict::Filtered(out) => {
            let v: Value = serde_json::from_slice(out).expect("filtered answer is not JSON");
            assert_only_allowed(kind, &v);
            assert_verbatim(kind, out, body);
            assert_eq!(filter_json(kind, body, &allow).as_ref(), Some(out));
        }
        Verdict::Pass => {
            // Passed through untouched: then there is no list of this kind a client could read.
            let v: Value = serde_json::from_slice(body).expect("a passed answer is JSON");
            let (array, _) = list_shape(kind);
            let is_list = v
                .get("result")
                .and_then(|r| r.get(array))
                .is_some_and(Value::is_array);
            assert!(!is_list, "a readable list answer passed unfiltered");
        }
        Verdict::Unfilterable => {}
    }
    let mut f = ListFilter::new(kind, false, Value::Null);
    let mut got = Vec::new();
    let pieces = chunks(&data[..1], body, 64);
    for p in &pieces {
        got.extend_from_slice(&f.push(Some(Bytes::copy_from_slice(p)), false, &allow));
    }
    got.extend_from_slice(&f.push(None, true, &allow));
    match verdict {
        Verdict::Filtered(out) => assert_eq!(got, out, "chunked ListFilter differs"),
        Verdict::Pass => assert_eq!(got, body, "a passed answer changed"),
        Verdict::Unfilterable => {
            // Fail closed: an error in place of the answer, never the answer itself.
            let v: Value = serde_json::from_slice(&got).expect("the replacement is JSON");
            assert_eq!(v["error"]["data"]["reason"], "list_unfilterable");
        }
    }
});

/// Every kept item is copied byte for byte from the upstream's answer.
fn assert_verbatim(kind: ListKind, out: &[u8], body: &[u8]) {
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
}

//! Filtering `*/list` answers down to what the caller may use, in `application/json` answers and
//! inside `text/event-stream` answers (each event rewritten as soon as it is complete; other events
//! pass byte for byte). Items the policy hides, or that lack the field it judges by, are removed.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use mcpgate_http::sse::{SseEvent, SseSplitter};
use serde_json::value::RawValue;

use crate::jsonrpc::{ListKind, Target};

/// The array in `result` and how each element names its target.
fn shape(kind: ListKind) -> (&'static str, &'static str, fn(String) -> Target) {
    match kind {
        ListKind::Tools => ("tools", "name", Target::Tool),
        ListKind::Prompts => ("prompts", "name", Target::Prompt),
        ListKind::Resources => ("resources", "uri", Target::Resource),
        ListKind::ResourceTemplates => ("resourceTemplates", "uriTemplate", Target::Resource),
    }
}

/// How an item names itself; every other member is skipped without being built.
#[derive(serde::Deserialize)]
struct ItemName {
    name: Option<String>,
    uri: Option<String>,
    #[serde(rename = "uriTemplate")]
    uri_template: Option<String>,
}

impl ItemName {
    fn get(self, field: &str) -> Option<String> {
        match field {
            "name" => self.name,
            "uri" => self.uri,
            _ => self.uri_template,
        }
    }
}

/// The filtered JSON body, or `None` when `body` is not a list answer of this kind (pass it on).
///
/// Kept items are copied as the upstream wrote them (raw JSON slices); only each item's naming
/// member is decoded. An item that cannot be read, or lacks the member, is removed.
pub fn filter_json(
    kind: ListKind,
    body: &[u8],
    allow: &dyn Fn(&Target) -> bool,
) -> Option<Vec<u8>> {
    let (array, field, make) = shape(kind);
    let mut top: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(body).ok()?;
    let mut result: BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(top.get("result")?.get()).ok()?;
    let kept = {
        let items: Vec<&RawValue> = serde_json::from_str(result.get(array)?.get()).ok()?;
        let mut out = String::with_capacity(result.get(array)?.get().len());
        out.push('[');
        for item in items {
            // serde also reads a struct from an array (`["delete_all", null, null]` has a
            // "name"): only an object names itself.
            if !item.get().starts_with('{') {
                continue;
            }
            let Ok(named) = serde_json::from_str::<ItemName>(item.get()) else {
                continue;
            };
            if named.get(field).is_some_and(|n| allow(&make(n))) {
                if out.len() > 1 {
                    out.push(',');
                }
                out.push_str(item.get());
            }
        }
        out.push(']');
        out
    };
    result.insert(array.to_owned(), RawValue::from_string(kept).ok()?);
    top.insert(
        "result".to_owned(),
        serde_json::value::to_raw_value(&result).ok()?,
    );
    serde_json::to_vec(&top).ok()
}

/// Incremental filter for an SSE answer.
pub struct SseFilter {
    kind: ListKind,
    splitter: SseSplitter,
    /// The last event was passed on raw and ended on a lone CR at the end of a chunk: the
    /// splitter will swallow a leading LF of the next chunk (the rest of that CRLF), which must
    /// still be passed on for the stream to stay byte for byte.
    lf_owed: bool,
}

impl SseFilter {
    pub fn new(kind: ListKind) -> SseFilter {
        SseFilter {
            kind,
            splitter: SseSplitter::new(),
            lf_owed: false,
        }
    }

    /// Feed a chunk; every event completed by it is appended to `out`, rewritten if it carries the
    /// list answer, untouched otherwise.
    pub fn push(&mut self, chunk: &[u8], allow: &dyn Fn(&Target) -> bool, out: &mut Vec<Bytes>) {
        if let Some(&first) = chunk.first() {
            if std::mem::take(&mut self.lf_owed) && first == b'\n' {
                out.push(Bytes::from_static(b"\n"));
            }
        }
        let mut events = Vec::new();
        self.splitter.push(chunk, &mut events);
        let Some(last) = events.pop() else {
            return;
        };
        for raw in events {
            out.push(self.rewrite(raw, allow));
        }
        let ends_on_cr = last.last() == Some(&b'\r') && self.splitter.pending() == 0;
        let ev = self.rewrite(last.clone(), allow);
        self.lf_owed = ends_on_cr && ev == last;
        out.push(ev);
    }

    /// Bytes of an unfinished event at the end of the stream (passed on as they are).
    pub fn finish(&mut self) -> Option<Bytes> {
        self.splitter.finish()
    }

    fn rewrite(&self, raw: Bytes, allow: &dyn Fn(&Target) -> bool) -> Bytes {
        let Some(mut ev) = SseEvent::parse(&raw) else {
            return raw;
        };
        let Some(filtered) = filter_json(self.kind, ev.data.as_bytes(), allow) else {
            return raw;
        };
        let Ok(data) = String::from_utf8(filtered) else {
            return raw;
        };
        ev.data = data;
        ev.to_bytes()
    }
}

/// Largest upstream `*/list` JSON answer the gateway will buffer to filter; larger ones are
/// replaced by an error.
pub const MAX_FILTERED_ANSWER: usize = 16 * 1024 * 1024;

/// Filtering state of one `*/list` answer, fed chunk by chunk as the answer streams.
pub enum ListFilter {
    /// `application/json`: buffered to the end, then filtered.
    Json {
        kind: ListKind,
        buf: BytesMut,
        too_large: bool,
    },
    /// `text/event-stream`: every event rewritten as it completes.
    Sse(Box<SseFilter>),
}

impl ListFilter {
    pub fn new(kind: ListKind, sse: bool) -> ListFilter {
        if sse {
            ListFilter::Sse(Box::new(SseFilter::new(kind)))
        } else {
            ListFilter::Json {
                kind,
                buf: BytesMut::new(),
                too_large: false,
            }
        }
    }

    /// Feed one chunk of the answer; returns what to send on now.
    pub fn push(
        &mut self,
        chunk: Option<Bytes>,
        end_of_stream: bool,
        allow: &dyn Fn(&Target) -> bool,
    ) -> Bytes {
        match self {
            ListFilter::Json {
                kind,
                buf,
                too_large,
            } => push_json(*kind, buf, too_large, chunk, end_of_stream, allow),
            ListFilter::Sse(f) => push_sse(f, chunk, end_of_stream, allow),
        }
    }
}

fn push_json(
    kind: ListKind,
    buf: &mut BytesMut,
    too_large: &mut bool,
    chunk: Option<Bytes>,
    end_of_stream: bool,
    allow: &dyn Fn(&Target) -> bool,
) -> Bytes {
    if let Some(c) = chunk {
        if buf.len() + c.len() > MAX_FILTERED_ANSWER {
            *too_large = true;
            buf.clear();
        } else if !*too_large {
            buf.extend_from_slice(&c);
        }
    }
    if !end_of_stream {
        return Bytes::new();
    }
    if *too_large {
        // Fail closed: never pass an unfiltered list.
        return Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":{},"message":"list answer too large to filter"}}}}"#,
            mcpgate_http::codes::INTERNAL_ERROR
        ));
    }
    let body = std::mem::take(buf).freeze();
    match filter_json(kind, &body, allow) {
        Some(filtered) => Bytes::from(filtered),
        None => body,
    }
}

fn push_sse(
    f: &mut SseFilter,
    chunk: Option<Bytes>,
    end_of_stream: bool,
    allow: &dyn Fn(&Target) -> bool,
) -> Bytes {
    let mut out = Vec::new();
    if let Some(c) = chunk {
        f.push(&c, allow, &mut out);
    }
    if end_of_stream {
        if let Some(rest) = f.finish() {
            out.push(rest);
        }
    }
    match out.len() {
        0 => Bytes::new(),
        1 => out.pop().unwrap_or_default(),
        _ => {
            let mut all = BytesMut::new();
            for b in out {
                all.extend_from_slice(&b);
            }
            all.freeze()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serde_json::Value;

    fn allow(t: &Target) -> bool {
        !t.name().starts_with("delete") && !t.name().contains("secret")
    }

    #[test]
    fn json_lists_are_filtered_and_other_fields_kept() {
        let body = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "echo"}, {"name": "delete_all"}, {"title": "no name"}], "nextCursor": "c2"}});
        let out: Value = serde_json::from_slice(
            &filter_json(ListKind::Tools, body.to_string().as_bytes(), &allow).unwrap(),
        )
        .unwrap();
        assert_eq!(out["result"]["tools"], json!([{"name": "echo"}]));
        assert_eq!(out["result"]["nextCursor"], "c2");
        assert_eq!(out["id"], 1);
        let res = json!({"jsonrpc": "2.0", "id": 2, "result": {"resources": [{"uri": "file:///secret/a"}, {"uri": "file:///b"}], "resourceTemplates": []}});
        let out: Value = serde_json::from_slice(
            &filter_json(ListKind::Resources, res.to_string().as_bytes(), &allow).unwrap(),
        )
        .unwrap();
        assert_eq!(out["result"]["resources"], json!([{"uri": "file:///b"}]));
        let tpl = json!({"jsonrpc": "2.0", "id": 3, "result": {"resourceTemplates": [{"uriTemplate": "file:///secret/{x}"}, {"uriTemplate": "file:///p/{x}"}]}});
        let out: Value = serde_json::from_slice(
            &filter_json(
                ListKind::ResourceTemplates,
                tpl.to_string().as_bytes(),
                &allow,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            out["result"]["resourceTemplates"],
            json!([{"uriTemplate": "file:///p/{x}"}])
        );
    }

    #[test]
    fn non_list_answers_pass_untouched() {
        assert!(filter_json(
            ListKind::Tools,
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#,
            &allow
        )
        .is_none());
        assert!(filter_json(ListKind::Tools, b"not json", &allow).is_none());
        assert!(filter_json(
            ListKind::Prompts,
            br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#,
            &allow
        )
        .is_none());
    }

    #[test]
    fn sse_events_are_rewritten_as_they_complete() {
        let note = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n";
        let answer = format!(
            "id: 7\r\nevent: message\r\ndata: {}\r\n\r\n",
            json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "echo"}, {"name": "delete_all"}]}})
        );
        let stream = format!("{note}{answer}: trailing comment");
        let mut f = SseFilter::new(ListKind::Tools);
        let mut out = Vec::new();
        // Feed in awkward 5-byte pieces.
        for piece in stream.as_bytes().chunks(5) {
            f.push(piece, &allow, &mut out);
        }
        assert_eq!(out.len(), 2);
        assert_eq!(
            &out[0][..],
            note.as_bytes(),
            "other events pass byte for byte"
        );
        let ev = SseEvent::parse(&out[1]).unwrap();
        assert_eq!(ev.id.as_deref(), Some("7"));
        assert_eq!(ev.event.as_deref(), Some("message"));
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!(v["result"]["tools"], json!([{"name": "echo"}]));
        assert_eq!(f.finish().as_deref(), Some(&b": trailing comment"[..]));
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let note = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\r\n\r\n";
        let not_json = "data: not json at all\n\n";
        let answer = format!(
            "event: message\r\nid: 42\r\nretry: 1000\r\ndata: {}\r\n\r\n",
            json!({"jsonrpc": "2.0", "id": 1, "result": {"prompts": [{"name": "delete_p"}, {"name": "greet"}, {"name": "secret"}], "nextCursor": "n"}})
        );
        let stream = format!("{note}{not_json}{answer}");
        let bytes = stream.as_bytes();
        let check = |out: &[Bytes]| {
            assert_eq!(out.len(), 3);
            assert_eq!(&out[0][..], note.as_bytes());
            assert_eq!(&out[1][..], not_json.as_bytes());
            let ev = SseEvent::parse(&out[2]).unwrap();
            assert_eq!(ev.id.as_deref(), Some("42"));
            assert_eq!(ev.event.as_deref(), Some("message"));
            assert_eq!(ev.retry.as_deref(), Some("1000"));
            let v: Value = serde_json::from_str(&ev.data).unwrap();
            assert_eq!(v["result"]["prompts"], json!([{"name": "greet"}]));
            assert_eq!(v["result"]["nextCursor"], "n");
        };
        // Events as the client sees them: the stream's bytes, re-split.
        let resplit = |out: &[Bytes]| {
            let mut s = SseSplitter::new();
            let mut evs = Vec::new();
            s.push(&out.concat(), &mut evs);
            assert_eq!(s.finish(), None);
            evs
        };
        for cut in 0..=bytes.len() {
            let mut f = SseFilter::new(ListKind::Prompts);
            let mut out = Vec::new();
            f.push(&bytes[..cut], &allow, &mut out);
            f.push(&bytes[cut..], &allow, &mut out);
            let whole = out.concat();
            assert!(
                whole.starts_with(format!("{note}{not_json}").as_bytes()),
                "cut at {cut}: passed-through events are byte for byte"
            );
            check(&resplit(&out));
            assert_eq!(f.finish(), None, "cut at {cut}");
        }
        let mut f = SseFilter::new(ListKind::Prompts);
        let mut out = Vec::new();
        for b in bytes {
            f.push(std::slice::from_ref(b), &allow, &mut out);
        }
        assert!(out
            .concat()
            .starts_with(format!("{note}{not_json}").as_bytes()));
        check(&resplit(&out));
    }

    #[test]
    fn items_that_are_not_objects_are_removed() {
        // Found by fuzz/ list_filter_json: an array item was read as a struct and kept.
        let body = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[["echo",null,null],"echo",{"name":"echo"}]}}"#;
        let out = filter_json(ListKind::Tools, body.as_bytes(), &allow).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["result"]["tools"], json!([{"name": "echo"}]));
    }

    #[test]
    fn sse_list_answers_with_invalid_utf8_are_still_filtered() {
        // Found by fuzz/ list_filter_sse: one invalid byte made the event unreadable to the
        // gateway, so it passed unfiltered, while a client (UTF-8 with replacement) read it.
        let raw = b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"delete_all\",\"description\":\"\xff\"},{\"name\":\"echo\"}]}}\n\n";
        let mut f = SseFilter::new(ListKind::Tools);
        let mut out = Vec::new();
        f.push(raw, &allow, &mut out);
        let ev = SseEvent::parse(&out.concat()).unwrap();
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!(v["result"]["tools"], json!([{"name": "echo"}]));
    }

    #[test]
    fn sse_answers_of_another_kind_pass_byte_for_byte() {
        let raw = format!(
            "data: {}\n\n",
            json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "delete_all"}]}})
        );
        let mut f = SseFilter::new(ListKind::Resources);
        let mut out = Vec::new();
        f.push(raw.as_bytes(), &allow, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0][..], raw.as_bytes());
    }

    #[test]
    fn kept_items_are_copied_verbatim_and_ambiguous_ones_dropped() {
        // An item naming itself twice cannot be judged: it is removed (fail closed).
        let body = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","x":{"deep":[1,2,{"y":"\u00e9"}]}},{"name":"echo","name":"delete_all"},{"name":"delete_all"}]}}"#;
        let out = filter_json(ListKind::Tools, body.as_bytes(), &allow).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#"{"name":"echo","x":{"deep":[1,2,{"y":"\u00e9"}]}}"#),
            "verbatim: {text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 1);
        // A duplicated list key in the upstream answer leaves exactly one (filtered) list.
        let dup = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}],"tools":[{"name":"delete_all"},{"name":"ok"}]}}"#;
        let text = String::from_utf8(filter_json(ListKind::Tools, dup.as_bytes(), &allow).unwrap())
            .unwrap();
        assert_eq!(text.matches("\"tools\"").count(), 1, "{text}");
        assert!(!text.contains("delete_all"), "{text}");
    }
}

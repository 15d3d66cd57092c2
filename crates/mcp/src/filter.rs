//! Filtering `*/list` answers down to what the caller may use, in `application/json` answers and
//! inside `text/event-stream` answers (each event rewritten as soon as it is complete; other events
//! pass byte for byte). Items the policy hides, or that lack the field it judges by, are removed;
//! what cannot be read unambiguously is replaced by a JSON-RPC error, never passed (fail closed).

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use mcpgate_http::sse::{SseEvent, SseSplitter};
use mcpgate_http::{codes, ErrorBody};
use serde_json::value::RawValue;
use serde_json::Value;

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

/// Which list answers a filter looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// The answer to one `*/list` request: its result must carry that list, or it is not passed.
    Answer(ListKind),
    /// A stream that may carry answers to earlier requests (a GET stream replaying events, the
    /// legacy `/sse` stream): every result carrying one of these lists is filtered.
    Stream(KindSet),
}

/// A set of list kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindSet(u8);

const ALL_KINDS: [ListKind; 4] = [
    ListKind::Tools,
    ListKind::Prompts,
    ListKind::Resources,
    ListKind::ResourceTemplates,
];

impl KindSet {
    /// The kinds for which `wanted` is true.
    pub fn of(wanted: impl Fn(ListKind) -> bool) -> KindSet {
        let bits = ALL_KINDS
            .iter()
            .enumerate()
            .filter(|(_, k)| wanted(**k))
            .fold(0, |acc, (i, _)| acc | 1 << i);
        KindSet(bits)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn iter(self) -> impl Iterator<Item = ListKind> {
        ALL_KINDS
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, k)| k)
    }
}

/// What to do with one JSON-RPC message of an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a list result (a request, a notification, an error, another kind of result): as is.
    Pass,
    /// A list result, filtered.
    Filtered(Vec<u8>),
    /// It may carry a list but cannot be read unambiguously (not JSON, a BOM, invalid UTF-8, an
    /// array, a list answer without its list): never passed on (fail closed).
    Unfilterable,
}

type TopLevel = BTreeMap<String, Box<RawValue>>;

/// Judge one JSON-RPC message of an answer and filter the lists it carries.
pub fn filter_message(watch: Watch, body: &[u8], allow: &dyn Fn(&Target) -> bool) -> Verdict {
    let Ok(mut top) = serde_json::from_slice::<TopLevel>(body) else {
        return Verdict::Unfilterable;
    };
    let Some(result) = top.get("result") else {
        // Requests, notifications and errors carry no list; a message with none of the three
        // is not JSON-RPC a client would act on.
        let known = top.contains_key("method") || top.contains_key("error");
        return if known {
            Verdict::Pass
        } else {
            Verdict::Unfilterable
        };
    };
    let Ok(mut result) = serde_json::from_str::<TopLevel>(result.get()) else {
        return match watch {
            Watch::Answer(_) => Verdict::Unfilterable,
            Watch::Stream(_) => Verdict::Pass,
        };
    };
    let kinds = match watch {
        Watch::Answer(kind) if !result.contains_key(shape(kind).0) => return Verdict::Unfilterable,
        Watch::Answer(kind) => KindSet::of(|k| k == kind),
        Watch::Stream(set) => {
            KindSet::of(|k| set.iter().any(|s| s == k) && result.contains_key(shape(k).0))
        }
    };
    if kinds.is_empty() {
        return Verdict::Pass;
    }
    for kind in kinds.iter() {
        if filter_list(kind, &mut result, allow).is_none() {
            return Verdict::Unfilterable;
        }
    }
    mark_private(&mut result);
    let rewritten = serde_json::value::to_raw_value(&result).ok().and_then(|r| {
        top.insert("result".to_owned(), r);
        serde_json::to_vec(&top).ok()
    });
    rewritten.map_or(Verdict::Unfilterable, Verdict::Filtered)
}

/// The filtered JSON body, or `None` when `body` is not a readable list answer of this kind.
pub fn filter_json(
    kind: ListKind,
    body: &[u8],
    allow: &dyn Fn(&Target) -> bool,
) -> Option<Vec<u8>> {
    match filter_message(Watch::Answer(kind), body, allow) {
        Verdict::Filtered(v) => Some(v),
        Verdict::Pass | Verdict::Unfilterable => None,
    }
}

/// Replace the result's list by the items the caller may use.
///
/// Kept items are copied as the upstream wrote them (raw JSON slices); only each item's naming
/// member is decoded. An item that cannot be read, or lacks the member, is removed.
fn filter_list(
    kind: ListKind,
    result: &mut TopLevel,
    allow: &dyn Fn(&Target) -> bool,
) -> Option<()> {
    let (array, field, make) = shape(kind);
    let raw = result.get(array)?.get();
    let items: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
    let mut out = String::with_capacity(raw.len());
    out.push('[');
    for item in items {
        // serde also reads a struct from an array (`["delete_all", null, null]` has a "name"):
        // only an object names itself.
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
    result.insert(array.to_owned(), RawValue::from_string(out).ok()?);
    Some(())
}

/// MCP 2026-07-28 results say whether clients may share a cached copy (`cacheScope`). A list
/// filtered for one caller is private by definition; an HTTP `Cache-Control` does not reach
/// SDK-side caches, so the body says it too.
fn mark_private(result: &mut TopLevel) {
    if result.contains_key("cacheScope") || result.contains_key("ttlMs") {
        if let Ok(private) = RawValue::from_string("\"private\"".to_owned()) {
            result.insert("cacheScope".to_owned(), private);
        }
    }
}

/// Largest upstream `*/list` JSON answer, or single SSE event, the gateway will buffer to filter;
/// larger ones are replaced by an error.
pub const MAX_FILTERED_ANSWER: usize = 16 * 1024 * 1024;

/// The JSON-RPC error sent instead of an answer that cannot be filtered.
fn unfilterable_error(id: &Value, why: &str) -> Vec<u8> {
    ErrorBody::new(502, codes::INTERNAL_ERROR, why, "list_unfilterable")
        .with_id(id.clone())
        .to_json()
}

/// The UTF-8 byte order mark; an SSE client strips one at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Incremental filter for an SSE answer or stream.
pub struct SseFilter {
    watch: Watch,
    /// The request's id, for the error that replaces an unfilterable event.
    id: Value,
    splitter: SseSplitter,
    /// The last event was passed on raw and ended on a lone CR at the end of a chunk: the
    /// splitter will swallow a leading LF of the next chunk (the rest of that CRLF), which must
    /// still be passed on for the stream to stay byte for byte.
    lf_owed: bool,
    /// The first bytes of the stream, until it is known whether they start with a BOM.
    head: Option<Vec<u8>>,
    /// An event could not be filtered or grew past the limit: the rest is dropped.
    poisoned: bool,
}

impl SseFilter {
    pub fn new(kind: ListKind) -> SseFilter {
        SseFilter::watching(Watch::Answer(kind), Value::Null)
    }

    pub fn watching(watch: Watch, id: Value) -> SseFilter {
        SseFilter {
            watch,
            id,
            splitter: SseSplitter::new(),
            lf_owed: false,
            head: Some(Vec::new()),
            poisoned: false,
        }
    }

    /// Feed a chunk; every event completed by it is appended to `out`, rewritten if it carries a
    /// list, untouched otherwise.
    pub fn push(&mut self, chunk: &[u8], allow: &dyn Fn(&Target) -> bool, out: &mut Vec<Bytes>) {
        if self.poisoned {
            return;
        }
        let Some(chunk) = self.strip_bom(chunk) else {
            return;
        };
        if let Some(&first) = chunk.first() {
            if std::mem::take(&mut self.lf_owed) && first == b'\n' {
                out.push(Bytes::from_static(b"\n"));
            }
        }
        let mut events = Vec::new();
        self.splitter.push(&chunk, &mut events);
        if self.splitter.pending() > MAX_FILTERED_ANSWER {
            events.clear();
            self.poison("an event of the answer is too large to filter", out);
            return;
        }
        let Some(last) = events.pop() else {
            return;
        };
        for raw in events {
            self.emit(raw, allow, out);
            if self.poisoned {
                // Found by fuzz/ list_filter_sse: once refused, nothing after it is sent, however
                // the stream was chunked.
                return;
            }
        }
        let ends_on_cr = last.last() == Some(&b'\r') && self.splitter.pending() == 0;
        let passed_raw = self.emit(last, allow, out);
        self.lf_owed = ends_on_cr && passed_raw;
    }

    /// Bytes of an unfinished event at the end of the stream: passed on only if they could not
    /// form an event a client acts on (a client drops an event without its blank line).
    pub fn finish(&mut self) -> Option<Bytes> {
        if self.poisoned {
            return None;
        }
        if let Some(head) = self.head.take().filter(|h| !h.is_empty()) {
            let mut sink = Vec::new();
            self.splitter.push(&head, &mut sink);
        }
        self.splitter.finish()
    }

    /// Hold the first bytes until a BOM can be recognised, and drop it.
    fn strip_bom(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        let Some(head) = self.head.as_mut() else {
            return Some(chunk.to_vec());
        };
        head.extend_from_slice(chunk);
        if head.len() < BOM.len() && BOM.starts_with(head) {
            return None;
        }
        let head = self.head.take().unwrap_or_default();
        Some(head.strip_prefix(BOM).unwrap_or(&head).to_vec())
    }

    /// Pass, rewrite or refuse one complete event. True when it was passed on untouched.
    fn emit(&mut self, raw: Bytes, allow: &dyn Fn(&Target) -> bool, out: &mut Vec<Bytes>) -> bool {
        let Some(mut ev) = SseEvent::parse(&raw) else {
            self.poison("an event of the answer is not UTF-8", out);
            return false;
        };
        // Events without data (priming events, comments) carry nothing to judge.
        if ev.data.is_empty() {
            out.push(raw);
            return true;
        }
        match filter_message(self.watch, ev.data.as_bytes(), allow) {
            Verdict::Pass => {
                out.push(raw);
                true
            }
            // Any event type: SDK clients act on `message` events only, but a readable list in
            // another event is filtered all the same.
            Verdict::Filtered(data) => {
                ev.data = String::from_utf8_lossy(&data).into_owned();
                out.push(ev.to_bytes());
                false
            }
            // What is not JSON-RPC in an event of another type (the legacy `endpoint` URL, a
            // ping) is no answer a client reads: it passes. In a `message` event it is refused.
            Verdict::Unfilterable if ev.event.as_deref().is_some_and(|t| t != "message") => {
                out.push(raw);
                true
            }
            Verdict::Unfilterable => {
                self.poison("the list answer cannot be filtered", out);
                false
            }
        }
    }

    /// Send an error event in place of what cannot be filtered, and drop the rest of the stream.
    fn poison(&mut self, why: &str, out: &mut Vec<Bytes>) {
        self.poisoned = true;
        out.push(error_event(&self.id, why));
    }
}

/// Filtering state of one answer, fed chunk by chunk as the answer streams.
pub enum ListFilter {
    /// `application/json`: buffered to the end, then filtered.
    Json {
        kind: ListKind,
        id: Value,
        buf: BytesMut,
        too_large: bool,
    },
    /// `text/event-stream`: every event rewritten as it completes.
    Sse(Box<SseFilter>),
    /// An answer the gateway cannot read (compressed although it asked for identity): replaced
    /// by an error, sent once (`id` is taken when it is).
    Unreadable { id: Option<Value>, sse: bool },
}

impl ListFilter {
    /// The filter for the answer to one `*/list` request.
    pub fn new(kind: ListKind, sse: bool, id: Value) -> ListFilter {
        if sse {
            ListFilter::Sse(Box::new(SseFilter::watching(Watch::Answer(kind), id)))
        } else {
            ListFilter::Json {
                kind,
                id,
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
                id,
                buf,
                too_large,
            } => push_json(*kind, id, buf, too_large, chunk, end_of_stream, allow),
            ListFilter::Sse(f) => push_sse(f, chunk, end_of_stream, allow),
            ListFilter::Unreadable { id, sse } => unreadable(id, *sse, end_of_stream),
        }
    }
}

/// The error for an unreadable answer: at once on SSE, at the end of a JSON answer; never twice.
fn unreadable(id: &mut Option<Value>, sse: bool, end_of_stream: bool) -> Bytes {
    if !(sse || end_of_stream) {
        return Bytes::new();
    }
    let Some(id) = id.take() else {
        return Bytes::new();
    };
    let why = "the answer is encoded and cannot be filtered";
    if sse {
        error_event(&id, why)
    } else {
        unfilterable_error(&id, why).into()
    }
}

/// An SSE `message` event carrying the error that replaces what cannot be filtered.
fn error_event(id: &Value, why: &str) -> Bytes {
    let ev = SseEvent {
        event: Some("message".into()),
        data: String::from_utf8(unfilterable_error(id, why)).unwrap_or_default(),
        ..SseEvent::default()
    };
    ev.to_bytes()
}

fn push_json(
    kind: ListKind,
    id: &Value,
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
        return unfilterable_error(id, "list answer too large to filter").into();
    }
    let body = std::mem::take(buf).freeze();
    match filter_message(Watch::Answer(kind), &body, allow) {
        Verdict::Filtered(filtered) => Bytes::from(filtered),
        Verdict::Pass => body,
        Verdict::Unfilterable => {
            unfilterable_error(id, "the list answer cannot be filtered").into()
        }
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
        _ => out.concat().into(),
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
        // Clients act on `message` events only; other types pass untouched, JSON or not.
        let not_json = "event: ping\ndata: not json at all\n\n";
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
    fn a_list_in_an_event_of_another_type_is_filtered_too() {
        // Found by fuzz/ list_filter_sse: SDK clients read `message` events only, but a readable
        // list is filtered whatever the event is called.
        let raw = format!(
            "event: mmethodessage\ndata: {}\n\nevent: endpoint\ndata: /messages?x\n\n",
            json!({"jsonrpc": "2.0", "id": 1, "result": {"prompts": [{"name": "delete_p"}, {"name": "greet"}]}})
        );
        let mut f = SseFilter::new(ListKind::Prompts);
        let mut out = Vec::new();
        f.push(raw.as_bytes(), &allow, &mut out);
        assert_eq!(out.len(), 2);
        let v: Value = serde_json::from_str(&SseEvent::parse(&out[0]).unwrap().data).unwrap();
        assert_eq!(v["result"]["prompts"], json!([{"name": "greet"}]));
        assert_eq!(&out[1][..], b"event: endpoint\ndata: /messages?x\n\n");
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
    fn an_answer_without_its_list_is_replaced_by_an_error() {
        let raw = format!(
            "data: {}\n\n",
            json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "delete_all"}]}})
        );
        let mut f = SseFilter::watching(Watch::Answer(ListKind::Resources), json!(9));
        let mut out = Vec::new();
        f.push(raw.as_bytes(), &allow, &mut out);
        assert_eq!(out.len(), 1);
        let v = error_of(&out[0]);
        assert_eq!(
            (v["id"].clone(), v["error"]["code"].clone()),
            (json!(9), json!(-32603))
        );
        assert!(!String::from_utf8_lossy(&out[0]).contains("delete_all"));
    }

    /// The JSON-RPC error inside an SSE event.
    fn error_of(event: &[u8]) -> Value {
        let ev = SseEvent::parse(event).unwrap();
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!(v["error"]["data"]["reason"], "list_unfilterable", "{v}");
        v
    }

    fn json_answer(body: &[u8]) -> Value {
        let mut f = ListFilter::new(ListKind::Tools, false, json!(5));
        let mid = body.len() / 2;
        let mut out = f
            .push(Some(Bytes::copy_from_slice(&body[..mid])), false, &allow)
            .to_vec();
        out.extend_from_slice(&f.push(Some(Bytes::copy_from_slice(&body[mid..])), true, &allow));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn json_answers_that_cannot_be_read_are_refused_not_passed() {
        let list = json!({"jsonrpc": "2.0", "id": 5, "result": {"tools": [{"name": "delete_all"}, {"name": "echo"}]}}).to_string();
        let bom = [BOM, list.as_bytes()].concat();
        let mut bad_utf8 = list.clone().into_bytes();
        let at = list.find("echo").unwrap();
        bad_utf8[at] = 0xFF;
        let array = format!("[{list}]");
        let no_list = r#"{"jsonrpc":"2.0","id":5,"result":{"prompts":[{"name":"delete_all"}]}}"#;
        let no_kind = r#"{"jsonrpc":"2.0","id":5,"surprise":{"tools":[{"name":"delete_all"}]}}"#;
        for (what, body) in [
            ("BOM", bom.as_slice()),
            ("invalid UTF-8", bad_utf8.as_slice()),
            ("array", array.as_bytes()),
            ("result without its list", no_list.as_bytes()),
            ("neither result, error nor method", no_kind.as_bytes()),
            ("not JSON", b"tools: delete_all".as_slice()),
        ] {
            let v = json_answer(body);
            assert_eq!(
                v["error"]["data"]["reason"], "list_unfilterable",
                "{what}: {v}"
            );
            assert_eq!(v["id"], 5, "{what}");
            assert!(!v.to_string().contains("delete_all"), "{what}");
        }
        let err = r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"no"}}"#;
        assert_eq!(
            json_answer(err.as_bytes())["error"]["code"],
            -32601,
            "errors pass"
        );
        assert_eq!(
            json_answer(list.as_bytes())["result"]["tools"],
            json!([{"name": "echo"}])
        );
    }

    #[test]
    fn sse_fails_closed_on_what_it_cannot_read_and_drops_the_rest() {
        let list =
            json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "delete_all"}]}});
        for (what, first) in [
            ("invalid UTF-8", b"data: {\"x\":\"\xFF\"}\n\n".to_vec()),
            ("not JSON", b"event: message\ndata: [1,2\n\n".to_vec()),
            ("an array", b"data: [1,2]\n\n".to_vec()),
        ] {
            let mut f = SseFilter::watching(Watch::Answer(ListKind::Tools), json!(1));
            let mut out = Vec::new();
            f.push(&first, &allow, &mut out);
            f.push(format!("data: {list}\n\n").as_bytes(), &allow, &mut out);
            assert_eq!(out.len(), 1, "{what}: one error, then nothing");
            error_of(&out[0]);
            assert_eq!(f.finish(), None, "{what}");
            // The same in one chunk, with another refused event after it: still one error.
            let mut f = SseFilter::watching(Watch::Answer(ListKind::Tools), json!(1));
            let mut out = Vec::new();
            let stream = [
                first.as_slice(),
                &first,
                format!("data: {list}\n\n").as_bytes(),
            ]
            .concat();
            f.push(&stream, &allow, &mut out);
            assert_eq!(out.len(), 1, "{what} in one chunk: one error, then nothing");
        }
    }

    #[test]
    fn a_bom_at_the_start_of_a_stream_is_dropped_as_clients_drop_it() {
        let list = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "delete_all"}, {"name": "echo"}]}});
        let stream = [BOM, format!("data: {list}\n\n").as_bytes()].concat();
        for cut in 0..=4 {
            let mut f = SseFilter::new(ListKind::Tools);
            let mut out = Vec::new();
            f.push(&stream[..cut], &allow, &mut out);
            f.push(&stream[cut..], &allow, &mut out);
            assert_eq!(out.len(), 1, "cut at {cut}");
            let ev = SseEvent::parse(&out[0]).unwrap();
            let v: Value = serde_json::from_str(&ev.data).unwrap();
            assert_eq!(
                v["result"]["tools"],
                json!([{"name": "echo"}]),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn an_event_past_the_limit_is_replaced_by_an_error() {
        let mut f = SseFilter::new(ListKind::Tools);
        let mut out = Vec::new();
        let piece = vec![b'a'; 1 << 20];
        f.push(b"data: ", &allow, &mut out);
        for _ in 0..=MAX_FILTERED_ANSWER >> 20 {
            f.push(&piece, &allow, &mut out);
        }
        assert_eq!(out.len(), 1);
        error_of(&out[0]);
        assert_eq!(f.finish(), None);
    }

    #[test]
    fn filtered_lists_say_they_are_private() {
        let public = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "echo"}], "ttlMs": 60000, "cacheScope": "public"}});
        let out: Value = serde_json::from_slice(
            &filter_json(ListKind::Tools, public.to_string().as_bytes(), &allow).unwrap(),
        )
        .unwrap();
        assert_eq!(out["result"]["cacheScope"], "private");
        assert_eq!(out["result"]["ttlMs"], 60000);
        let ttl_only = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [], "ttlMs": 5}});
        let out: Value = serde_json::from_slice(
            &filter_json(ListKind::Tools, ttl_only.to_string().as_bytes(), &allow).unwrap(),
        )
        .unwrap();
        assert_eq!(out["result"]["cacheScope"], "private");
        let old = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": []}});
        let out: Value = serde_json::from_slice(
            &filter_json(ListKind::Tools, old.to_string().as_bytes(), &allow).unwrap(),
        )
        .unwrap();
        assert!(
            out["result"].get("cacheScope").is_none(),
            "2025 answers keep their shape"
        );
    }

    #[test]
    fn streams_filter_every_list_result_they_carry() {
        let tools = KindSet::of(|k| k == ListKind::Tools);
        let replayed = json!({"jsonrpc": "2.0", "id": 3, "result": {"tools": [{"name": "delete_all"}, {"name": "echo"}]}});
        let call = json!({"jsonrpc": "2.0", "id": 4, "result": {"content": [{"type": "text", "text": "delete_all"}]}});
        let prompts =
            json!({"jsonrpc": "2.0", "id": 5, "result": {"prompts": [{"name": "delete_p"}]}});
        let stream = format!("id: a\ndata: {replayed}\n\ndata: {call}\n\ndata: {prompts}\n\nevent: endpoint\ndata: /messages?x\n\n");
        let mut f = SseFilter::watching(Watch::Stream(tools), Value::Null);
        let mut out = Vec::new();
        f.push(stream.as_bytes(), &allow, &mut out);
        assert_eq!(out.len(), 4);
        let v: Value = serde_json::from_str(&SseEvent::parse(&out[0]).unwrap().data).unwrap();
        assert_eq!(v["result"]["tools"], json!([{"name": "echo"}]));
        assert_eq!(SseEvent::parse(&out[0]).unwrap().id.as_deref(), Some("a"));
        assert_eq!(&out[1][..], format!("data: {call}\n\n").as_bytes());
        assert_eq!(
            &out[2][..],
            format!("data: {prompts}\n\n").as_bytes(),
            "prompts are not filtered on this route"
        );
        assert_eq!(&out[3][..], b"event: endpoint\ndata: /messages?x\n\n");
    }

    #[test]
    fn unreadable_answers_become_one_error() {
        let mut json_filter = ListFilter::Unreadable {
            id: Some(json!(2)),
            sse: false,
        };
        assert!(json_filter
            .push(Some(Bytes::from_static(b"\x1f\x8b gzip")), false, &allow)
            .is_empty());
        let v: Value = serde_json::from_slice(&json_filter.push(None, true, &allow)).unwrap();
        assert_eq!(
            (v["id"].clone(), v["error"]["data"]["reason"].clone()),
            (json!(2), json!("list_unfilterable"))
        );
        let mut sse = ListFilter::Unreadable {
            id: Some(json!(2)),
            sse: true,
        };
        error_of(&sse.push(Some(Bytes::from_static(b"\x1f\x8b")), false, &allow));
        assert!(sse
            .push(Some(Bytes::from_static(b"more")), true, &allow)
            .is_empty());
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

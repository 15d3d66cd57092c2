//! Fuzzes the SSE splitter (`SseSplitter`) and event parser (`SseEvent::parse`).
//!
//! Input: two bytes seeding the chunking, then the stream. Property (module docs and the
//! `events_split_across_chunks_and_byte_by_byte` test): however the stream is cut, the same
//! events come out, in the same order, with the same unfinished rest. The one documented
//! difference: an event whose final line ending is a CRLF cut between CR and LF is released at
//! the CR (the LF is the same line ending and is dropped). Each event parses the same either way
//! and survives `to_bytes` then `parse`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mcpgate_http::sse::{SseEvent, SseSplitter};

fn split(chunks: &[&[u8]]) -> (Vec<Bytes>, Option<Bytes>) {
    let mut s = SseSplitter::new();
    let mut out = Vec::new();
    for c in chunks {
        s.push(c, &mut out);
        // Everything not yet released is held, nothing more.
        let _ = s.pending();
    }
    let rest = s.finish();
    (out, rest)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (seed, stream) = data.split_at(2);
    let (whole, whole_rest) = split(&[stream]);
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    for chunking in [mcpgate_fuzz::chunks(seed, stream, 16), bytewise] {
        let (cut, cut_rest) = split(&chunking);
        assert_eq!(cut.len(), whole.len(), "number of events differs");
        for (c, w) in cut.iter().zip(&whole) {
            let same = c == w || (c.ends_with(b"\r") && w[..] == [&c[..], b"\n"].concat()[..]);
            assert!(same, "event {c:?} cut vs {w:?} whole");
            assert_eq!(SseEvent::parse(c), SseEvent::parse(w));
        }
        assert_eq!(cut_rest, whole_rest, "unfinished rest differs");
    }
    // The events partition the stream (up to the dropped LFs above).
    let mut joined: Vec<u8> = whole.concat();
    joined.extend_from_slice(whole_rest.as_deref().unwrap_or_default());
    assert_eq!(joined, stream, "one-chunk split lost or invented bytes");
    for ev in &whole {
        if let Some(parsed) = SseEvent::parse(ev) {
            assert_eq!(SseEvent::parse(&parsed.to_bytes()), Some(parsed.clone()));
        }
    }
});

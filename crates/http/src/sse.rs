//! Server-Sent Events framing: split a byte stream into complete events as they arrive, and
//! parse/format single events. Used wherever the gateway must look inside an SSE answer
//! (the legacy `endpoint` event, `tools/list` filtering) without holding the stream back.

use bytes::{Bytes, BytesMut};

/// Incremental splitter: feed chunks, get back every event completed so far (terminator included).
/// Bytes of an unfinished event stay buffered until their blank line arrives.
#[derive(Debug, Default)]
pub struct SseSplitter {
    buf: BytesMut,
    /// Where scanning resumes.
    scanned: usize,
    /// Start of the line being scanned.
    line_start: usize,
    /// An event ended on a lone CR at the end of a chunk: a leading LF of the next chunk belongs
    /// to that line ending and is dropped.
    skip_lf: bool,
}

impl SseSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held for an unfinished event.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Add a chunk; push each completed event (raw bytes, with its blank line) onto `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Bytes>) {
        // An empty read completes nothing, and must not spend a pending `skip_lf`.
        let Some(&first) = chunk.first() else { return };
        // The first byte after a released CR settles `skip_lf` whatever it is: an LF arriving
        // alone must not leave the flag set to swallow the next chunk's LF as well.
        let chunk = if std::mem::take(&mut self.skip_lf) && first == b'\n' {
            &chunk[1..]
        } else {
            chunk
        };
        self.buf.extend_from_slice(chunk);
        let mut i = self.scanned;
        while i < self.buf.len() {
            let next = match self.buf[i] {
                b'\n' => i + 1,
                // A CR ending an empty line ends the event whatever follows; a CR ending a
                // non-empty line waits for the next byte (CR or CRLF).
                b'\r' if i + 1 == self.buf.len() && i == self.line_start => {
                    self.skip_lf = true;
                    i + 1
                }
                b'\r' if i + 1 == self.buf.len() => break,
                b'\r' if self.buf[i + 1] == b'\n' => i + 2,
                b'\r' => i + 1,
                _ => {
                    i += 1;
                    continue;
                }
            };
            let empty_line = i == self.line_start;
            self.line_start = next;
            i = next;
            if empty_line {
                out.push(self.buf.split_to(next).freeze());
                self.line_start = 0;
                i = 0;
            }
        }
        self.scanned = i;
    }

    /// Whatever is left at the end of the stream (an event without its blank line).
    pub fn finish(&mut self) -> Option<Bytes> {
        self.scanned = 0;
        self.line_start = 0;
        (!self.buf.is_empty()).then(|| self.buf.split().freeze())
    }
}

/// One parsed event. Comments are dropped; unknown fields are ignored (per the SSE spec).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    pub retry: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// Read `raw` as a client does: the SSE spec decodes the stream as UTF-8 with replacement, so
    /// an invalid byte must not make the gateway skip an event the client will read anyway.
    pub fn parse(raw: &[u8]) -> Option<SseEvent> {
        let text = String::from_utf8_lossy(raw);
        let mut ev = SseEvent::default();
        let mut data_lines: Vec<&str> = Vec::new();
        for line in text.split(['\n', '\r']) {
            if line.is_empty() || line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => ev.event = Some(value.to_string()),
                "id" => ev.id = Some(value.to_string()),
                "retry" => ev.retry = Some(value.to_string()),
                "data" => data_lines.push(value),
                _ => {}
            }
        }
        ev.data = data_lines.join("\n");
        Some(ev)
    }

    /// Serialise, ending with a blank line.
    pub fn to_bytes(&self) -> Bytes {
        let mut s = String::with_capacity(self.data.len() + 32);
        if let Some(id) = &self.id {
            s.push_str("id: ");
            s.push_str(id);
            s.push('\n');
        }
        if let Some(event) = &self.event {
            s.push_str("event: ");
            s.push_str(event);
            s.push('\n');
        }
        if let Some(retry) = &self.retry {
            s.push_str("retry: ");
            s.push_str(retry);
            s.push('\n');
        }
        for line in self.data.split('\n') {
            s.push_str("data: ");
            s.push_str(line);
            s.push('\n');
        }
        s.push('\n');
        Bytes::from(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]]) -> Vec<Bytes> {
        let mut s = SseSplitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out
    }

    #[test]
    fn whole_events_in_one_chunk() {
        let out = split_all(&[b"event: a\ndata: 1\n\ndata: 2\n\n"]);
        assert_eq!(
            out,
            vec![
                Bytes::from("event: a\ndata: 1\n\n"),
                Bytes::from("data: 2\n\n")
            ]
        );
    }

    #[test]
    fn events_split_across_chunks_and_byte_by_byte() {
        let stream = b"id: 1\r\ndata: {\"a\":1}\r\n\r\ndata: x\n\n";
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        let out = split_all(&chunks);
        assert_eq!(out.len(), 2);
        // The event is released at its final CR; the LF that follows is the same line ending.
        assert_eq!(&out[0][..], b"id: 1\r\ndata: {\"a\":1}\r\n\r");
        assert_eq!(&out[1][..], b"data: x\n\n");
    }

    #[test]
    fn cr_only_line_endings() {
        let out = split_all(&[b"data: a\r\r", b"data: b\r", b"\r", b"\ndata: c\n\n"]);
        assert_eq!(
            out,
            vec![
                Bytes::from("data: a\r\r"),
                Bytes::from("data: b\r\r"),
                Bytes::from("data: c\n\n")
            ]
        );
    }

    #[test]
    fn a_lone_lf_chunk_ends_the_crlf_and_nothing_more() {
        // CR | LF | LF: the first LF completes the CRLF, the second is a blank line of its own
        // (found by fuzz/ sse_split: the second LF was swallowed too).
        let out = split_all(&[b"data: a\r\r", b"\n", b"", b"\n"]);
        assert_eq!(out, vec![Bytes::from("data: a\r\r"), Bytes::from("\n")]);
        assert_eq!(
            split_all(&[b"data: a\r\r\n\n"]),
            vec![Bytes::from("data: a\r\r\n"), Bytes::from("\n")]
        );
        // An empty read between CR and LF keeps the LF owed.
        let out = split_all(&[b"data: a\n\r", b"", b"\ndata: b\n\n"]);
        assert_eq!(
            out,
            vec![Bytes::from("data: a\n\r"), Bytes::from("data: b\n\n")]
        );
    }

    #[test]
    fn invalid_utf8_is_read_with_replacement_like_a_client() {
        let ev = SseEvent::parse(b": \xff\nevent: message\ndata: a\xffb\n\n").unwrap();
        assert_eq!(ev.event.as_deref(), Some("message"));
        assert_eq!(ev.data, "a\u{fffd}b");
    }

    #[test]
    fn unfinished_event_is_held_then_finished() {
        let mut s = SseSplitter::new();
        let mut out = Vec::new();
        s.push(b"data: partial\n", &mut out);
        assert!(out.is_empty());
        assert_eq!(s.pending(), 14);
        assert_eq!(s.finish().unwrap(), Bytes::from("data: partial\n"));
    }

    #[test]
    fn parse_and_format_round_trip() {
        let ev =
            SseEvent::parse(b": comment\nevent: endpoint\nid: 7\ndata: /messages?x=1\n\n").unwrap();
        assert_eq!(ev.event.as_deref(), Some("endpoint"));
        assert_eq!(ev.id.as_deref(), Some("7"));
        assert_eq!(ev.data, "/messages?x=1");
        let again = SseEvent::parse(&ev.to_bytes()).unwrap();
        assert_eq!(again, ev);
    }

    #[test]
    fn multi_line_data() {
        let ev = SseEvent::parse(b"data: a\ndata: b\ndata\n\n").unwrap();
        assert_eq!(ev.data, "a\nb\n");
        assert_eq!(SseEvent::parse(&ev.to_bytes()).unwrap().data, "a\nb\n");
    }
}

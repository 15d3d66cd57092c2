//! Helpers shared by the integration tests: an HTTP client and a minimal
//! incremental Server-Sent Events reader.

#![allow(dead_code)]

use std::time::{Duration, Instant};

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A client without a whole-request timeout, for long-lived streams.
pub fn stream_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("client")
}

pub fn loopback() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[derive(Debug, Default, Clone)]
pub struct SseEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
    /// When the event's terminating blank line arrived.
    pub at: Option<Instant>,
}

/// Reads events from a streaming response, one at a time, as they arrive.
pub struct SseReader {
    response: reqwest::Response,
    buf: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        SseReader {
            response,
            buf: String::new(),
        }
    }

    /// The next event (comment-only blocks are skipped); `None` at the end of
    /// the stream. Panics if nothing arrives within 10 s.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let Some(event) = parse_block(&block) {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("SSE event within 10 s")
                .expect("stream read");
            self.buf
                .push_str(std::str::from_utf8(&chunk?).expect("UTF-8"));
        }
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent::default();
    let mut data = Vec::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event.event = Some(v.trim_start().to_owned());
        } else if let Some(v) = line.strip_prefix("id:") {
            event.id = Some(v.trim_start().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
        }
    }
    if event.event.is_none() && event.id.is_none() && data.is_empty() {
        return None;
    }
    event.data = data.join("\n");
    event.at = Some(Instant::now());
    Some(event)
}

/// `application/x-www-form-urlencoded` body (reqwest's `form` feature is off
/// in this workspace).
pub fn form(builder: reqwest::RequestBuilder, pairs: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    builder
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
}

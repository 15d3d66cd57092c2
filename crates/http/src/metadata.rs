//! Where each RFC 9728 Protected Resource Metadata document is served: by request path and, when
//! several routes share a path on different hosts (`tenant-a.example.com/t/mcp`,
//! `tenant-b.example.com/t/mcp`), by host — so one tenant's challenge never points at a document
//! naming another tenant's resource and authorization servers.

use std::collections::HashMap;

use crate::routing::normalize_host;

/// The documents of one configuration.
#[derive(Debug, Default)]
pub struct MetadataDocs {
    by_path: HashMap<String, Vec<(String, Vec<u8>)>>,
}

impl MetadataDocs {
    /// Serve `doc` at the path and host of `metadata_url`.
    pub fn insert(&mut self, metadata_url: &url::Url, doc: Vec<u8>) {
        let host = normalize_host(metadata_url.host_str().unwrap_or_default());
        let docs = self
            .by_path
            .entry(metadata_url.path().to_owned())
            .or_default();
        docs.retain(|(h, _)| *h != host);
        docs.push((host, doc));
    }

    /// The document for a request. A path with one document serves it on any host name the
    /// gateway is reached by; a path shared by several hosts serves only the request host's.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&[u8]> {
        match self.by_path.get(path)?.as_slice() {
            [(_, only)] => Some(only),
            several => {
                let host = normalize_host(host?);
                several
                    .iter()
                    .find(|(h, _)| *h == host)
                    .map(|(_, d)| d.as_slice())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        s.parse().unwrap()
    }

    #[test]
    fn shared_paths_are_told_apart_by_host() {
        let mut docs = MetadataDocs::default();
        let path = "/.well-known/oauth-protected-resource/t/mcp";
        docs.insert(
            &url(&format!("https://tenant-a.example.com{path}")),
            b"a".to_vec(),
        );
        docs.insert(
            &url(&format!("https://tenant-b.example.com{path}")),
            b"b".to_vec(),
        );
        docs.insert(
            &url("https://gw.example.com/.well-known/oauth-protected-resource/x"),
            b"x".to_vec(),
        );
        assert_eq!(
            docs.find(Some("tenant-a.example.com"), path),
            Some(&b"a"[..])
        );
        assert_eq!(
            docs.find(Some("TENANT-B.example.com:443"), path),
            Some(&b"b"[..])
        );
        assert_eq!(docs.find(Some("tenant-c.example.com"), path), None);
        assert_eq!(docs.find(None, path), None);
        // One document for a path: served whatever name reached the gateway (as before).
        let x = "/.well-known/oauth-protected-resource/x";
        assert_eq!(docs.find(Some("10.0.0.5:8080"), x), Some(&b"x"[..]));
        assert_eq!(
            docs.find(None, "/.well-known/oauth-protected-resource/none"),
            None
        );
    }
}

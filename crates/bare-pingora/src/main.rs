//! The benchmark's "bare pingora" variant (issue 16): a `ProxyHttp` whose only hook is
//! `upstream_peer`, on the same pingora build as mcpgate (the patched `vendor/pingora-core`),
//! with the same listeners (plain HTTP/1.1 + h2c, and TLS with h2 by ALPN), worker count and
//! crypto provider. What mcpgate costs beyond it is mcpgate's own work.
//!
//! usage: bare-pingora PLAIN_ADDR TLS_ADDR CERT KEY UPSTREAM_ADDR

use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

struct Bare {
    upstream: String,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [plain, tls, cert, key, upstream] = args.as_slice() else {
        eprintln!("usage: bare-pingora PLAIN_ADDR TLS_ADDR CERT KEY UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The same worker count mcpgate uses (crates/proxy/src/server.rs); SIGTERM exits at once, so
    // the bench's stop (and callgrind's output at exit) does not wait out a drain.
    let conf = ServerConf {
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let bare = Bare {
        upstream: upstream.clone(),
    };
    let mut proxy = http_proxy_service(&server.configuration, bare);
    proxy.add_tcp(plain);
    let mut settings = TlsSettings::intermediate(cert, key).expect("TLS certificate and key");
    settings.enable_h2();
    proxy.add_tls_with_settings(tls, None, settings);
    if let Some(app) = proxy.app_logic_mut() {
        app.server_options.get_or_insert_with(Default::default).h2c = true;
    }
    server.add_service(proxy);
    server.run_forever();
}

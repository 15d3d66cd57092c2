//! Per-request cost of sealed session ids: sealing the upstream's id on `initialize`, and opening
//! it (AES-256-GCM, JSON payload, owner/route/age checks) on every request of the session.
//!
//! `cargo bench -p mcpgate-mcp --bench seal`

use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use mcpgate_mcp::seal::SessionSealer;
use mcpgate_mcp::session::SessionOwner;

fn bench(c: &mut Criterion) {
    // A ring mid-rotation: the sealing key first, the old one after it.
    let sealer = SessionSealer::new(&[[7; 32], [9; 32]], Duration::from_secs(86_400));
    let owner = SessionOwner {
        issuer: "https://login.example.com/realms/corp".into(),
        subject: "sub:0f8e2f9a-5c1b-4a57-9d3e-7b2c1e4f6a80".into(),
    };
    // What SDK servers mint: a UUID.
    let upstream_id = "3f0c9b2e-8d4a-4e6f-a1b7-5c2d9e8f7a61";
    let sealed = sealer
        .seal(upstream_id, "github", &owner, SystemTime::now())
        .unwrap();
    println!("sealed id: {} bytes", sealed.len());
    c.bench_function("seal_session_id", |b| {
        b.iter(|| sealer.seal(upstream_id, "github", &owner, SystemTime::now()))
    });
    c.bench_function("open_session_id", |b| {
        b.iter(|| sealer.open(&sealed, "github", &owner, SystemTime::now()))
    });
    c.bench_function("open_forged_session_id", |b| {
        let forged = format!("{}A", &sealed[..sealed.len() - 1]);
        b.iter(|| sealer.open(&forged, "github", &owner, SystemTime::now()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);

//! How routing grows with the number of routes (docs/benchmarks.md, "How cost grows with the
//! work"): 1 to 10,000 host-less routes, a request for the last one configured and one for no
//! route at all.
//!
//! `cargo bench -p mcpgate-http --bench routing`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mcpgate_http::RouteTable;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup");
    for n in [1usize, 100, 10_000] {
        let paths: Vec<String> = (0..n).map(|i| format!("/team-{i}/mcp")).collect();
        let table = RouteTable::new(paths.iter().map(|p| (None, p.as_str())));
        let last = format!("{}/messages", paths[n - 1]);
        group.bench_with_input(BenchmarkId::new("hit_last", n), &last, |b, path| {
            b.iter(|| table.find(Some("gw.example.com"), path))
        });
        group.bench_with_input(BenchmarkId::new("miss", n), "/nobody/mcp", |b, path| {
            b.iter(|| table.find(Some("gw.example.com"), path))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

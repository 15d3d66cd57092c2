//! What one rate-limit decision costs the request that waits for it: p50 and p99 of
//! `Store::check` against a local `redis-server` (one script round trip) and in memory, measured
//! one decision at a time. Percentiles, not criterion's means: the tail is what requests feel.
//!
//! `cargo bench -p mcpgate-store --bench ratelimit` (needs Debian's `redis-server`)

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mcpgate_ratelimit::{BudgetKey, Charge, Limit, MemoryStore, Store};
use mcpgate_store::ratelimit::RedisRateStore;

const WARMUP: usize = 2_000;
const DECISIONS: usize = 50_000;

/// Never refuses during the run: every decision does the full work of an allowed one.
fn generous() -> Limit {
    Limit::new(1_000_000, Duration::from_secs(1), 1_000_000)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server() -> (Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server not found");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    (Server(child), format!("redis://127.0.0.1:{port}/0"))
}

/// Time each decision; `distinct` gives every decision its own key (a flood of callers).
async fn measure(store: &dyn Store, distinct: bool) -> (f64, f64, f64) {
    let key = |i: usize| BudgetKey(format!("{:032x}", if distinct { i } else { 0 }));
    for i in 0..WARMUP {
        store
            .check(&key(i), generous(), Charge::Consume)
            .await
            .unwrap();
    }
    let mut times = Vec::with_capacity(DECISIONS);
    for i in 0..DECISIONS {
        let k = key(WARMUP + i);
        let started = Instant::now();
        let d = store.check(&k, generous(), Charge::Consume).await.unwrap();
        times.push(started.elapsed());
        assert!(d.allowed);
    }
    times.sort();
    let us = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (us(0.5), us(0.99), us(0.999))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (_server, url) = redis_server();
    let redis = RedisRateStore::new(&url, Duration::from_secs(2));
    let memory = MemoryStore::new(200_000);
    let cases: [(&str, &dyn Store, bool); 4] = [
        ("redis, one key", &redis, false),
        ("redis, every decision a new key", &redis, true),
        ("memory, one key", &memory, false),
        ("memory, every decision a new key", &memory, true),
    ];
    println!("{DECISIONS} decisions each, one at a time");
    for (name, store, distinct) in cases {
        let (p50, p99, p999) = measure(store, distinct).await;
        println!("{name:34} p50 {p50:7.1} µs   p99 {p99:7.1} µs   p99.9 {p999:7.1} µs");
    }
}

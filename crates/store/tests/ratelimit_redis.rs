//! The GCRA Lua script against a real `redis-server` (Debian's, as in the e2e tests): the same
//! answers as the pure algorithm, a look that never charges, keys that expire when whole, and a
//! typed failure when Redis is gone.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mcpgate_ratelimit::{BudgetKey, Charge, Limit, Store};
use mcpgate_store::ratelimit::RedisRateStore;

/// A throwaway redis-server on a free loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Server {
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
            .expect("redis-server not found: install Debian's redis-server (.ci/run does)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn key(s: &str) -> BudgetKey {
    BudgetKey(format!("{s:0>32}"))
}

/// One an hour, three at once: nothing refills during the test.
fn hourly() -> Limit {
    Limit::new(1, Duration::from_secs(3600), 3)
}

#[tokio::test]
async fn the_script_allows_the_burst_then_says_when_to_retry() {
    let server = Server::start();
    let store = RedisRateStore::new(&server.url(), Duration::from_secs(2));
    let mut remaining = Vec::new();
    for _ in 0..4 {
        let d = store
            .check(&key("a"), hourly(), Charge::Consume)
            .await
            .unwrap();
        remaining.push((d.allowed, d.remaining));
    }
    assert_eq!(remaining, [(true, 2), (true, 1), (true, 0), (false, 0)]);
    let refused = store
        .check(&key("a"), hourly(), Charge::Consume)
        .await
        .unwrap();
    // Three hours of budget are spent; the next slot is (just under) an hour away.
    let hour = Duration::from_secs(3600);
    assert!(refused.retry_after <= hour && refused.retry_after > hour - Duration::from_secs(60));
    assert!(refused.reset <= 3 * hour && refused.reset > 3 * hour - Duration::from_secs(60));
    // Another key is untouched.
    assert!(
        store
            .check(&key("b"), hourly(), Charge::Consume)
            .await
            .unwrap()
            .allowed
    );
}

#[tokio::test]
async fn a_look_never_charges_and_keys_expire_when_whole() {
    let server = Server::start();
    let store = RedisRateStore::new(&server.url(), Duration::from_secs(2));
    for _ in 0..10 {
        let d = store
            .check(&key("p"), hourly(), Charge::Peek)
            .await
            .unwrap();
        assert!(d.allowed);
    }
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let name = RedisRateStore::redis_key(&key("p"));
    let exists: bool = redis::cmd("EXISTS")
        .arg(&name)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!exists, "a look writes nothing");
    store
        .check(&key("p"), hourly(), Charge::Consume)
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&name)
        .query_async(&mut conn)
        .await
        .unwrap();
    // One request of three: whole again after one interval (an hour).
    assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{ttl}");
    assert!(name.starts_with("mcpgate:rl:{") && name.ends_with('}'));
}

#[tokio::test]
async fn no_redis_is_a_typed_failure() {
    let server = Server::start();
    let url = server.url();
    drop(server);
    let store = RedisRateStore::new(&url, Duration::from_millis(300));
    let err = store
        .check(&key("x"), hourly(), Charge::Consume)
        .await
        .unwrap_err();
    assert!(!err.reason.is_empty());
    // The next attempt within the pause fails at once without trying again.
    let again = store
        .check(&key("x"), hourly(), Charge::Consume)
        .await
        .unwrap_err();
    assert_eq!(again.reason, "store_unreachable");
}

//! How many request-body bytes the gateway may hold at once while it judges bodies: in all, and
//! per client connection (HTTP/2 multiplexes many held bodies over one connection). Without it,
//! streams that send most of a large body and never finish grow the process without bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The caps, from `limits.max_buffered_bodies` and `limits.max_buffered_per_connection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub total: u64,
    pub per_connection: u64,
}

/// Body bytes held across the process.
#[derive(Debug, Default)]
pub struct BodyBudget {
    used: AtomicU64,
    by_connection: Mutex<HashMap<SocketAddr, u64>>,
}

/// The budget is spent: refuse the request (503) rather than hold more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

impl BodyBudget {
    /// Bytes held now, in all.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Hold `n` more bytes for `conn`, or refuse without holding anything.
    fn take(&self, caps: Caps, conn: SocketAddr, n: u64) -> Result<(), Exhausted> {
        let mut per = self.by_connection.lock().unwrap_or_else(|e| e.into_inner());
        let mine = per.get(&conn).copied().unwrap_or(0);
        if mine + n > caps.per_connection {
            return Err(Exhausted);
        }
        let total = self.used.fetch_add(n, Ordering::AcqRel) + n;
        if total > caps.total {
            self.used.fetch_sub(n, Ordering::AcqRel);
            return Err(Exhausted);
        }
        per.insert(conn, mine + n);
        Ok(())
    }

    fn give_back(&self, conn: SocketAddr, n: u64) {
        if n == 0 {
            return;
        }
        let mut per = self.by_connection.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mine) = per.get_mut(&conn) {
            *mine = mine.saturating_sub(n);
            if *mine == 0 {
                per.remove(&conn);
            }
        }
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// What one request holds; given back when released or dropped (a request that ends in any way
/// returns its bytes).
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    conn: SocketAddr,
    bytes: u64,
}

impl Reservation {
    /// Bytes held across the process now.
    pub fn total_used(&self) -> u64 {
        self.budget.used()
    }

    pub fn new(budget: Arc<BodyBudget>, conn: SocketAddr) -> Reservation {
        Reservation {
            budget,
            conn,
            bytes: 0,
        }
    }

    /// Account for `n` more held bytes.
    pub fn grow(&mut self, caps: Caps, n: u64) -> Result<(), Exhausted> {
        self.budget.take(caps, self.conn, n)?;
        self.bytes += n;
        Ok(())
    }

    /// The body left the gateway's hands.
    pub fn release(&mut self) {
        self.budget
            .give_back(self.conn, std::mem::take(&mut self.bytes));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        total: 100,
        per_connection: 60,
    };

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn per_connection_and_total_caps_hold_and_everything_comes_back() {
        let budget = Arc::new(BodyBudget::default());
        let mut a1 = Reservation::new(budget.clone(), addr(1));
        let mut a2 = Reservation::new(budget.clone(), addr(1));
        assert_eq!(a1.grow(CAPS, 40), Ok(()));
        assert_eq!(a2.grow(CAPS, 30), Err(Exhausted), "one connection: 70 > 60");
        assert_eq!(a2.grow(CAPS, 20), Ok(()));
        let mut b = Reservation::new(budget.clone(), addr(2));
        assert_eq!(b.grow(CAPS, 41), Err(Exhausted), "all: 101 > 100");
        assert_eq!(budget.used(), 60, "a refusal holds nothing");
        assert_eq!(b.grow(CAPS, 40), Ok(()));
        a1.release();
        assert_eq!(budget.used(), 60);
        drop(a2);
        drop(b);
        assert_eq!(budget.used(), 0);
        assert!(
            budget.by_connection.lock().unwrap().is_empty(),
            "no entry left behind"
        );
        drop(a1);
        assert_eq!(budget.used(), 0, "released twice gives back once");
    }
}

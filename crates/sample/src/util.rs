//! Small helpers shared by both servers: poison-tolerant locking, random
//! identifiers, and binding/serving an axum router with a shutdown switch.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use base64::Engine as _;
use rand::RngCore as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Locks a mutex, ignoring poisoning (one panicking test must not cascade).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `bytes` random bytes, base64url without padding (visible ASCII only).
pub(crate) fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A running axum server: its task and the switch that stops it.
pub(crate) struct Running {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Binds `bind` and serves `router` built from a shutdown receiver (so
    /// long-lived streams can end themselves when the server stops).
    pub async fn start(
        bind: SocketAddr,
        router: impl FnOnce(SocketAddr, watch::Receiver<bool>) -> Router,
    ) -> std::io::Result<Running> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let app = router(addr, rx.clone());
        tracing::debug!(%addr, "listening");
        let mut signal = rx;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Running {
            addr,
            shutdown,
            task,
        })
    }

    /// Stops accepting, ends open event streams, and waits (bounded) for
    /// in-flight requests to finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

//! Long-lived work on its own OS thread (a pipeline's chain, the webhook source's commit
//! forwarder), awaited from async code. The async runtime's blocking pool is bounded (it
//! serves the object store's file calls and other short ones), so nothing that runs for the
//! life of a pipeline may hold one of its threads.

use std::future::Future;

use anyhow::Context;

/// Runs `f` on a new thread called `name`; the future resolves to its result, or to an error
/// if the thread could not start or panicked.
pub fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = anyhow::Result<T>> + Send + 'static {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .with_context(|| format!("Cannot start the thread `{name}`."));
    let name = name.to_owned();
    async move {
        spawned?;
        rx.await
            .map_err(|_| anyhow::anyhow!("The thread `{name}` panicked."))
    }
}

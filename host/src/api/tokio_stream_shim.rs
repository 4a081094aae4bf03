//! A `Stream` of a tokio broadcast receiver that warp can serve (it wants `Send + Sync`): a
//! task forwards the events into a bounded queue read by `poll_fn`. A reader that falls
//! behind the hub (it missed events) skips them; a reader that stops reading altogether (its
//! queue fills up: a stalled or malicious client) is dropped, so that no reader holds more
//! than [`QUEUE`] events of the host's memory. A gone client ends the task.

use std::sync::Arc;

use futures::Stream;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio::sync::mpsc::{self, error::TrySendError};

/// Events queued for one reader before it is dropped.
pub const QUEUE: usize = 256;

/// Events from `rx` until its channel closes, the reader falls [`QUEUE`] events behind, or
/// the stream is dropped.
pub fn stream(mut rx: Receiver<Arc<str>>) -> impl Stream<Item = Arc<str>> + Send + Sync + 'static {
    let (tx, mut out) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(event) => match tx.try_send(event) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        tracing::info!(
                            "A live-stream reader fell {QUEUE} events behind; it is dropped \
                             (it reconnects when it reads again)."
                        );
                        return;
                    }
                    Err(TrySendError::Closed(_)) => return,
                },
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
    futures::stream::poll_fn(move |cx| out.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio::sync::broadcast;

    use super::*;

    /// A reader that never reads holds at most `QUEUE` events, then its stream ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_reader_is_dropped_at_the_queue_bound() {
        let (tx, rx) = broadcast::channel(1024);
        let stream = stream(rx);
        for n in 0..(QUEUE + 10) {
            tx.send(Arc::from(n.to_string())).unwrap();
        }
        // The reader reads nothing while the forwarder runs into the bound.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drop(tx);
        let got: Vec<Arc<str>> = stream.collect().await;
        assert_eq!(got.len(), QUEUE);
        assert_eq!(&*got[0], "0");
    }

    /// A reader that keeps up gets every event.
    #[tokio::test]
    async fn a_reader_that_keeps_up_gets_everything() {
        let (tx, rx) = broadcast::channel(16);
        let mut stream = Box::pin(stream(rx));
        for n in 0..200 {
            tx.send(Arc::from(n.to_string())).unwrap();
            assert_eq!(&*stream.next().await.unwrap(), n.to_string());
        }
    }
}

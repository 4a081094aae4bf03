//! A `Stream` of a tokio broadcast receiver that warp can serve (it wants `Send + Sync`): a
//! task forwards the events into an unbounded channel read by `poll_fn`. A slow client skips
//! the events it missed instead of ending the stream; a gone client ends the task.

use std::sync::Arc;

use futures::Stream;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio::sync::mpsc;

/// Events from `rx` until its channel closes or the stream is dropped.
pub fn stream(mut rx: Receiver<Arc<str>>) -> impl Stream<Item = Arc<str>> + Send + Sync + 'static {
    let (tx, mut out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    if tx.send(event).is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
    futures::stream::poll_fn(move |cx| out.poll_recv(cx))
}

//! The background tasks every instance runs (webhook delivery, housekeeping): each gets a
//! stop signal when started and is stopped by sending it and waiting for the work in flight.

use std::future::Future;

use tokio::sync::watch;

/// A running background task.
pub struct Background {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Background {
    /// Runs `body` with a receiver that turns `true` (and reports a change) once
    /// [`Background::stop`] is called.
    pub fn spawn<F, Fut>(body: F) -> Self
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(body(stopped));
        Background { stop, task }
    }

    /// Signals the task and waits until it has finished what it was doing.
    #[tracing::instrument(skip_all)]
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

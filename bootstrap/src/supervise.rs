//! Background tasks the service cannot do without, and what happens when one dies.
use futures_util::FutureExt;
use std::future::Future;
use tokio_util::sync::CancellationToken;

/// Spawns a task the service cannot do without. If it panics or ends before `stop`, `failed`
/// is cancelled and the whole service stops with an error: a dead relay would otherwise let
/// registrations pile up in the outbox while every probe said healthy.
pub(crate) fn spawn_vital(
    name: &'static str,
    task: impl Future<Output = ()> + Send + 'static,
    stop: &CancellationToken,
    failed: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (stop, failed) = (stop.clone(), failed.clone());
    tokio::spawn(async move {
        let outcome = std::panic::AssertUnwindSafe(task).catch_unwind().await;
        match outcome {
            Ok(()) if stop.is_cancelled() => return,
            Ok(()) => tracing::error!(task = name, "a background task ended by itself; stopping"),
            Err(_) => tracing::error!(task = name, "a background task panicked; stopping"),
        }
        failed.cancel();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_stops_the_service() {
        let (stop, failed) = (CancellationToken::new(), CancellationToken::new());
        let task = spawn_vital("doomed", async { panic!("a bug") }, &stop, &failed);
        let _ = task.await;
        assert!(failed.is_cancelled());
    }

    #[tokio::test]
    async fn a_task_that_returns_by_itself_stops_the_service() {
        let (stop, failed) = (CancellationToken::new(), CancellationToken::new());
        let _ = spawn_vital("quitter", async {}, &stop, &failed).await;
        assert!(failed.is_cancelled());
    }

    #[tokio::test]
    async fn a_task_that_returns_once_told_to_stop_is_no_failure() {
        let (stop, failed) = (CancellationToken::new(), CancellationToken::new());
        let until_stopped = stop.clone();
        let task = spawn_vital(
            "worker",
            async move { until_stopped.cancelled().await },
            &stop,
            &failed,
        );
        stop.cancel();
        let _ = task.await;
        assert!(!failed.is_cancelled());
    }
}

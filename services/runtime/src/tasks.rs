//! Every spawned task has an owner that waits for it at shutdown: each service (and the process
//! itself) holds one [`Tasks`], spawns through it, and is waited for, bounded, once its servers
//! have drained. The tasks stop on the same token as everything else.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The tasks of one owner (a service, the gateway, the process), and the token they stop on.
#[derive(Clone)]
pub struct Tasks {
    owner: &'static str,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Tasks {
    pub fn new(owner: &'static str, shutdown: &CancellationToken) -> Self {
        Tasks {
            owner,
            tracker: TaskTracker::new(),
            shutdown: shutdown.clone(),
        }
    }

    /// The token every task of this owner stops on.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Spawns a task this owner waits for.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Waits, at most `limit`, for every task spawned so far (the caller has cancelled the
    /// token, or the tasks end on their own); says which owner's tasks were still running.
    pub async fn join(&self, limit: Duration) {
        self.tracker.close();
        if tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                owner = self.owner,
                running = self.tracker.len(),
                "tasks still running at shutdown were left"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn join_waits_for_the_tasks_that_stop_on_the_token() {
        let shutdown = CancellationToken::new();
        let tasks = Tasks::new("test", &shutdown);
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let token = tasks.shutdown().clone();
        let flag = finished.clone();
        tasks.spawn(async move {
            token.cancelled().await;
            tokio::task::yield_now().await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        shutdown.cancel();
        tasks.join(Duration::from_secs(5)).await;
        assert!(
            finished.load(std::sync::atomic::Ordering::SeqCst),
            "the task ran to its end before join returned"
        );
        assert!(tasks.tracker.is_empty());
    }
}

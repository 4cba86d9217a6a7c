//! Retention: error logs older than `AUTO_DELETE_ERROR_LOGS_DAYS` (when
//! `AUTO_DELETE_ERROR_LOGS_ENABLED`), request logs older than `AUTO_DELETE_REQUEST_LOGS_DAYS`
//! (when `AUTO_DELETE_REQUEST_LOGS_ENABLED`) are deleted every hour, and at once when those
//! settings change; on Postgres a day's partition of request logs is dropped whole once its day
//! is past (`partitions.rs`); stored Responses API objects go with the request logs. Counter buckets go too: minutes after 26 hours, hours after 40 days, days with the
//! request logs (kept forever when those are).

use std::time::Duration;

use gb_runtime::database::{Database, DbError};
use gb_runtime::live::LiveSettings;
use gb_runtime::now_ms;
use tokio_util::sync::CancellationToken;

use crate::{partitions, store};

#[derive(Clone)]
pub struct Retention {
    pub db: Database,
    pub live: LiveSettings,
}

impl Retention {
    /// Deletes what the current settings say is too old: (error logs, request logs) deleted.
    /// On Postgres, the day partitions of request logs are made ahead first, and those wholly
    /// too old dropped.
    pub async fn apply(&self) -> Result<(u64, u64), DbError> {
        partitions::ensure(&self.db, now_ms()).await?;
        let settings = self.live.current();
        let cutoff = |age: Option<Duration>| age.map(|age| now_ms() - age.as_millis() as i64);
        let requests_before = cutoff(settings.logging.request_log_retention().max_age());
        let dropped = match requests_before {
            Some(before_ms) => partitions::drop_older(&self.db, before_ms).await?,
            None => 0,
        };
        let (errors, deleted) = store::delete_older(
            &self.db,
            cutoff(settings.logging.error_log_retention().max_age()),
            requests_before,
        )
        .await?;
        let requests = dropped + deleted;
        // Stored Responses API objects are kept as long as the request logs.
        if let Some(before_ms) = requests_before {
            let responses = crate::responses::delete_older(&self.db, before_ms).await?;
            if responses > 0 {
                tracing::info!(responses, "old stored responses deleted");
            }
        }
        // The counters outlive the raw rows: minutes and hours for their fixed time, days as
        // long as request logs are kept.
        let buckets = crate::stats::delete_old_buckets(&self.db, now_ms(), requests_before).await?;
        if buckets > 0 {
            tracing::debug!(buckets, "old counter buckets deleted");
        }
        if errors + requests > 0 {
            tracing::info!(
                error_logs = errors,
                request_logs = requests,
                "old logs deleted"
            );
        }
        Ok((errors, requests))
    }

    /// Runs every hour and after each change of the retention settings, until shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        let (changed, mut changes) = tokio::sync::mpsc::channel::<()>(1);
        self.live.on_change(
            |settings| {
                (
                    settings.logging.error_log_retention(),
                    settings.logging.request_log_retention(),
                )
            },
            move |_, _, _| {
                let _ = changed.try_send(());
            },
        );
        let mut ticker = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
                Some(()) = changes.recv() => {}
            }
            if let Err(error) = self.apply().await {
                tracing::warn!(%error, "deleting old logs failed");
            }
        }
    }
}

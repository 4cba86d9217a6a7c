//! The one writer of the logs on SQLite: a thread of its own with its own connection (WAL,
//! `synchronous=NORMAL`), so that a commit's fsync or a wait for the file's lock never holds
//! a runtime worker. Batches queued while it commits go in together in the next transaction
//! (one commit for all), up to [`MAX_GROUP_RECORDS`]; each caller learns how its own ended.

use std::path::Path;

use gb_runtime::database::{DbError, sqlite_connection_blocking};
use tokio::sync::{mpsc, oneshot};

use crate::write::{Batch, write_sqlite};

/// The most records one transaction takes from queued batches. Measured (1 M requests' records
/// from four senders in batches of 512, `gb-bench logs`): 16.0k requests/s grouped up to 8,192,
/// 16.1k not grouped: the writes are bound by SQLite's own work (its parser and VM, ~40% of the
/// process), not by commits (WAL with `synchronous=NORMAL` does not sync at each). Grouping
/// stays for the commits it saves when several shippers write at once.
const MAX_GROUP_RECORDS: usize = 8_192;

/// Batches waiting for the thread; beyond this, callers wait (the logging service's callers
/// are the shippers, which hold their records until answered).
const QUEUED_BATCHES: usize = 64;

struct Job {
    batch: Batch,
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Clone)]
pub struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
}

impl SqliteWriter {
    /// Opens the thread's connection and starts it; it ends once every handle is dropped.
    pub fn start(path: &Path) -> Result<Self, DbError> {
        let conn = sqlite_connection_blocking(path)?;
        let (jobs, queue) = mpsc::channel(QUEUED_BATCHES);
        std::thread::Builder::new()
            .name("sqlite-log-writer".to_owned())
            .spawn(move || run(conn, queue))
            .map_err(|error| DbError::Unavailable(format!("no writer thread: {error}")))?;
        Ok(SqliteWriter { jobs })
    }

    /// Writes a batch in a transaction (perhaps with others queued beside it).
    pub async fn write(&self, batch: Batch) -> Result<(), DbError> {
        let (done, answer) = oneshot::channel();
        let gone = || DbError::Unavailable("the log writer has stopped".to_owned());
        self.jobs
            .send(Job { batch, done })
            .await
            .map_err(|_| gone())?;
        answer
            .await
            .map_err(|_| gone())?
            .map_err(DbError::Unavailable)
    }
}

fn run(mut conn: diesel::SqliteConnection, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.blocking_recv() {
        let mut records = first.batch.records();
        let mut jobs = vec![first];
        while records < MAX_GROUP_RECORDS {
            match queue.try_recv() {
                Ok(job) => {
                    records += job.batch.records();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        if jobs.len() == 1 {
            let job = jobs.remove(0);
            let result = write_sqlite(&mut conn, &job.batch).map_err(|error| error.to_string());
            let _ = job.done.send(result);
            continue;
        }
        let (batches, answers): (Vec<Batch>, Vec<_>) =
            jobs.into_iter().map(|job| (job.batch, job.done)).unzip();
        let mut group = Batch::default();
        for batch in batches {
            group.append(batch);
        }
        match write_sqlite(&mut conn, &group) {
            Ok(()) => {
                for answer in answers {
                    let _ = answer.send(Ok(()));
                }
            }
            Err(error) => {
                // The whole group failed (and wrote nothing): each caller retries its own.
                let error = error.to_string();
                tracing::warn!(%error, batches = answers.len(), "a group of log batches failed");
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }
}

//! Records sent in batches, off the request path: outcome reports, request and error logs.
//!
//! The buffer is bounded. A batch that fails for a reason that passes (the receiver is down,
//! restarting, overloaded) is retried with backoff for as long as it takes, while new records
//! wait in the buffer: an outage shorter than the buffer loses nothing. What does not fit in
//! the buffer, a batch the receiver refuses for good, and what is still unsent when the
//! process stops, are counted in a metric and logged; never lost silently.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const BATCH: usize = 512;
const LINGER: Duration = Duration::from_millis(50);

/// The sending side; cheap to clone. The task ends once every clone is dropped and what was
/// buffered has been sent.
pub struct Batcher<T> {
    sender: mpsc::Sender<T>,
    dropped: Arc<AtomicU64>,
    /// The counter of dropped records, e.g. `gemini_log_records_dropped_total`.
    metric: &'static str,
    /// What a record is, for log lines.
    what: &'static str,
}

impl<T> Clone for Batcher<T> {
    fn clone(&self) -> Self {
        Batcher {
            sender: self.sender.clone(),
            dropped: self.dropped.clone(),
            metric: self.metric,
            what: self.what,
        }
    }
}

impl<T: Clone + Send + 'static> Batcher<T> {
    /// Starts the task that gathers up to 512 records (waiting at most 50 ms after the first)
    /// and hands them to `send`, retried three times.
    pub fn start<Send, Sent>(
        capacity: usize,
        metric: &'static str,
        what: &'static str,
        send: Send,
    ) -> (Self, JoinHandle<()>)
    where
        Send: FnMut(Vec<T>) -> Sent + std::marker::Send + 'static,
        Sent: Future<Output = Result<(), tonic::Status>> + std::marker::Send + 'static,
    {
        let (sender, receiver) = mpsc::channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let batcher = Batcher {
            sender,
            dropped: dropped.clone(),
            metric,
            what,
        };
        let task = tokio::spawn(send_batches(receiver, send, batcher.counter()));
        (batcher, task)
    }

    /// Queues a record without waiting; a full buffer drops it (counted and logged).
    pub fn push(&self, record: T) {
        if self.sender.try_send(record).is_err() {
            self.counter().lost(1, "buffer full");
        }
    }

    /// How many records this batcher has dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn counter(&self) -> DropCounter {
        DropCounter {
            dropped: self.dropped.clone(),
            metric: self.metric,
            what: self.what,
        }
    }
}

struct DropCounter {
    dropped: Arc<AtomicU64>,
    metric: &'static str,
    what: &'static str,
}

impl DropCounter {
    fn lost(&self, count: u64, why: &'static str) {
        metrics::counter!(self.metric).increment(count);
        let before = self.dropped.fetch_add(count, Ordering::Relaxed);
        let total = before + count;
        // One line per power of two: an overload does not flood the log.
        if (before + 1..=total).any(u64::is_power_of_two) {
            tracing::warn!(
                what = self.what,
                lost = count,
                dropped_total = total,
                "{why}: {} dropped",
                self.what
            );
        }
    }
}

async fn send_batches<T, Send, Sent>(
    mut receiver: mpsc::Receiver<T>,
    mut send: Send,
    counter: DropCounter,
) where
    T: Clone,
    Send: FnMut(Vec<T>) -> Sent,
    Sent: Future<Output = Result<(), tonic::Status>>,
{
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if receiver.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            match tokio::time::timeout_at(deadline, receiver.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let records = std::mem::take(&mut batch);
        send_until_done(records, &mut send, &receiver, &counter).await;
    }
}

/// The first retry's wait; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Once every sender is gone (the process stops), how many more tries a batch gets.
const TRIES_AT_SHUTDOWN: u32 = 5;

/// Whether a failed send may succeed later: the receiver down, restarting or overloaded.
fn passes(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted
            | tonic::Code::Cancelled
            | tonic::Code::Unknown
            | tonic::Code::Internal
    )
}

/// Sends one batch, retrying with backoff while the failure passes.
async fn send_until_done<T, Send, Sent>(
    records: Vec<T>,
    send: &mut Send,
    receiver: &mpsc::Receiver<T>,
    counter: &DropCounter,
) where
    T: Clone,
    Send: FnMut(Vec<T>) -> Sent,
    Sent: Future<Output = Result<(), tonic::Status>>,
{
    let count = records.len() as u64;
    let mut backoff = FIRST_BACKOFF;
    let mut tries_left_at_shutdown = TRIES_AT_SHUTDOWN;
    for attempt in 1u32.. {
        let status = match send(records.clone()).await {
            Ok(()) => return,
            Err(status) => status,
        };
        if !passes(status.code()) {
            tracing::error!(what = counter.what, code = ?status.code(), message = status.message(), "a batch was refused");
            counter.lost(count, "batch refused");
            return;
        }
        if receiver.is_closed() {
            tries_left_at_shutdown -= 1;
            if tries_left_at_shutdown == 0 {
                counter.lost(count, "receiver unreachable at shutdown");
                return;
            }
        }
        // One line per power of two: a long outage does not flood the log.
        if attempt.is_power_of_two() {
            tracing::warn!(what = counter.what, code = ?status.code(), message = status.message(), attempt, "sending a batch failed; retrying");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn everything_arrives_in_order_when_the_sink_keeps_up() {
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let (batcher, task) = Batcher::start(64, "test_dropped_total", "numbers", move |batch| {
            sink.lock().unwrap().extend(batch);
            async { Ok(()) }
        });
        for number in 0..1000u32 {
            batcher.push(number);
            if number % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let dropped = batcher.dropped();
        drop(batcher);
        task.await.unwrap();
        let received = received.lock().unwrap();
        assert_eq!(received.len() as u64 + dropped, 1000);
        assert!(received.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[tokio::test]
    async fn a_full_buffer_drops_and_counts_instead_of_waiting() {
        // A sink that never answers: once it holds the first batch, the buffer fills and stays
        // full.
        let (entered, mut stuck) = tokio::sync::watch::channel(false);
        let (batcher, task) = Batcher::start(
            4,
            "test_dropped_total",
            "numbers",
            move |_batch: Vec<u32>| {
                entered.send_replace(true);
                std::future::pending::<Result<(), tonic::Status>>()
            },
        );
        batcher.push(0);
        let sink_holds_a_batch = stuck.wait_for(|stuck| *stuck).await;
        assert!(sink_holds_a_batch.is_ok());
        let mut pushed = 0;
        while batcher.dropped() == 0 {
            batcher.push(pushed);
            pushed += 1;
            assert!(pushed <= 5, "a buffer of 4 holds no more than 4");
        }
        let before = batcher.dropped();
        for number in 0..100 {
            batcher.push(number);
        }
        assert_eq!(
            batcher.dropped() - before,
            100,
            "a stuck sink drops every new record"
        );
        task.abort();
    }

    type Received = Arc<Mutex<Vec<u32>>>;

    /// A sink that answers `code` for its first `failures` calls, then takes everything.
    fn flaky_sink(
        failures: usize,
        code: tonic::Code,
    ) -> (
        Received,
        impl FnMut(Vec<u32>) -> std::future::Ready<Result<(), tonic::Status>>,
    ) {
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let mut calls = 0;
        let send = move |batch: Vec<u32>| {
            calls += 1;
            if calls <= failures {
                return std::future::ready(Err(tonic::Status::new(code, "down")));
            }
            sink.lock().unwrap().extend(batch);
            std::future::ready(Ok(()))
        };
        (received, send)
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_shorter_than_the_buffer_loses_nothing() {
        // Twelve failures in a row: about 40 s of (virtual) outage with the backoff.
        let (received, send) = flaky_sink(12, tonic::Code::Unavailable);
        let (batcher, task) = Batcher::start(4096, "test_dropped_total", "numbers", send);
        for number in 0..3000u32 {
            batcher.push(number);
            if number % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        // The receiver comes back while the process runs: wait for the last record.
        for _ in 0..10_000 {
            if received.lock().unwrap().len() + batcher.dropped() as usize >= 3000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(batcher.dropped(), 0, "nothing dropped");
        drop(batcher);
        task.await.unwrap();
        let received = received.lock().unwrap();
        assert_eq!(
            *received,
            (0..3000).collect::<Vec<_>>(),
            "all, once, in order"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_refused_for_good_is_counted_not_retried() {
        let (received, send) = flaky_sink(1, tonic::Code::InvalidArgument);
        let (batcher, task) = Batcher::start(64, "test_dropped_total", "numbers", send);
        batcher.push(1);
        let dropped = batcher.dropped.clone();
        drop(batcher);
        task.await.unwrap();
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        assert!(received.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn at_shutdown_an_unreachable_receiver_costs_a_bounded_wait_and_is_counted() {
        let (received, send) = flaky_sink(usize::MAX, tonic::Code::Unavailable);
        let (batcher, task) = Batcher::start(64, "test_dropped_total", "numbers", send);
        for number in 0..10 {
            batcher.push(number);
        }
        // Every sender gone: the task gives up after a few tries, and counts what it held.
        let dropped = batcher.dropped.clone();
        drop(batcher);
        task.await.unwrap();
        assert_eq!(dropped.load(Ordering::Relaxed), 10);
        assert!(received.lock().unwrap().is_empty());
    }
}

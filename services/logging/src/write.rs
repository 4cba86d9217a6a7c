//! Writes of `error_logs` and `request_logs`: a batch in one transaction, as a few multi-row
//! INSERTs, with its attempts added to the counters (`rollups.rs`) in the same transaction.
//!
//! Each upstream attempt is counted once: a success from its request record (the client
//! request's row, or an ATTEMPT record, which keeps no row), a failure from its error record.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use gb_proto::logging::v1 as pb;
use gb_runtime::database::{Database, DbError};
use gb_runtime::settings::DatabaseLocation;
use gb_runtime::time::{from_ms as to_time, to_ms};

use crate::rollups::{self, ROWS_PER_UPSERT, upsert_rollups};
use crate::schema::{error_logs, request_logs};
use crate::store::{KIND_ATTEMPT, KIND_CLIENT, stored_label};

pub(crate) fn small(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn big(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[derive(Insertable)]
// NULL bound for `None`, not the column left out (`DEFAULT`, which SQLite lacks): what lets
// diesel put many rows in one INSERT on SQLite.
#[diesel(table_name = error_logs, treat_none_as_default_value = false)]
struct NewError {
    error_message: String,
    error_time: NaiveDateTime,
    request_context: Option<String>,
    key_id: i64,
    key_masked: String,
    model_name: String,
    error_type: String,
    error_class: String,
    error_code: i32,
    client: String,
    latency_ms: i32,
}

#[derive(Insertable)]
// NULL bound for `None`, not the column left out (`DEFAULT`, which SQLite lacks): what lets
// diesel put many rows in one INSERT on SQLite.
#[diesel(table_name = request_logs, treat_none_as_default_value = false)]
struct NewRequest {
    request_time: NaiveDateTime,
    request_method: String,
    request_path: String,
    request_params: Option<String>,
    kind: &'static str,
    model_name: String,
    key_id: i64,
    key_masked: String,
    status_code: i32,
    is_success: bool,
    latency_ms: i32,
    prompt_tokens: i64,
    completion_tokens: i64,
    client: String,
    outcome: String,
    attempts: i32,
    client_label: String,
}

impl NewRequest {
    fn from(record: pb::RequestRecord) -> Self {
        let kind = if record.kind() == pb::RecordKind::Client {
            KIND_CLIENT
        } else {
            KIND_ATTEMPT
        };
        let outcome = stored_label(record.outcome());
        let (path, params) = match record.path.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (record.path, None),
        };
        NewRequest {
            request_time: to_time(record.at_ms),
            request_method: record.method,
            request_path: path,
            request_params: params,
            kind,
            model_name: record.model,
            key_id: record.key_id,
            key_masked: record.key_masked,
            status_code: small(record.status_code),
            is_success: (200..300).contains(&record.status_code),
            latency_ms: small(record.latency_ms),
            prompt_tokens: big(record.prompt_tokens),
            completion_tokens: big(record.completion_tokens),
            client: record.client,
            outcome,
            attempts: small(record.attempts),
            client_label: record.label.chars().take(256).collect(),
        }
    }

    /// Whether the record brings a successful attempt to the counters.
    fn counts(&self) -> bool {
        self.outcome == gb_proto::keys::v1::OutcomeClass::Success.label()
    }
}

impl NewRequest {
    fn as_attempt(&self) -> rollups::Attempt<'_> {
        rollups::Attempt {
            at_ms: to_ms(self.request_time),
            key_id: self.key_id,
            key_masked: &self.key_masked,
            model: &self.model_name,
            client: &self.client,
            status_code: self.status_code,
            outcome: &self.outcome,
            success: self.is_success,
            latency_ms: self.latency_ms,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
        }
    }
}

impl NewError {
    fn as_attempt(&self) -> rollups::Attempt<'_> {
        rollups::Attempt {
            at_ms: to_ms(self.error_time),
            key_id: self.key_id,
            key_masked: &self.key_masked,
            model: &self.model_name,
            client: &self.client,
            status_code: self.error_code,
            outcome: &self.error_class,
            success: false,
            latency_ms: self.latency_ms,
            prompt_tokens: 0,
            completion_tokens: 0,
        }
    }

    fn from(record: pb::ErrorRecord) -> Self {
        let error_class = stored_label(record.error_class());
        NewError {
            error_message: record.error_message,
            error_time: to_time(record.at_ms),
            request_context: (!record.request_body.is_empty()).then_some(record.request_body),
            key_id: record.key_id,
            key_masked: record.key_masked,
            model_name: record.model,
            error_type: record.error_type,
            error_class,
            error_code: small(record.error_code),
            client: record.client,
            latency_ms: small(record.latency_ms),
        }
    }
}

/// Rows per INSERT statement: well under SQLite's bound-parameter limit (18 columns a row).
const ROWS_PER_INSERT: usize = 200;

/// A batch of records as rows: the client requests' rows, the error logs, and the successful
/// attempts that are counted without a row of their own (ATTEMPT records).
#[derive(Default)]
pub struct Batch {
    requests: Vec<NewRequest>,
    errors: Vec<NewError>,
    counted_only: Vec<NewRequest>,
}

impl Batch {
    pub fn of(requests: Vec<pb::RequestRecord>, errors: Vec<pb::ErrorRecord>) -> Self {
        let (requests, counted_only): (Vec<NewRequest>, Vec<NewRequest>) = requests
            .into_iter()
            .map(NewRequest::from)
            .partition(|request| request.kind == KIND_CLIENT);
        Batch {
            requests,
            errors: errors.into_iter().map(NewError::from).collect(),
            counted_only: counted_only
                .into_iter()
                .filter(NewRequest::counts)
                .collect(),
        }
    }

    /// The rows it writes (ATTEMPT records write none).
    pub fn rows(&self) -> usize {
        self.requests.len() + self.errors.len()
    }

    /// Records in all, rows or not.
    pub fn records(&self) -> usize {
        self.rows() + self.counted_only.len()
    }

    pub fn append(&mut self, other: Batch) {
        self.requests.extend(other.requests);
        self.errors.extend(other.errors);
        self.counted_only.extend(other.counted_only);
    }

    /// Each attempt once: a success from its request record, a failure from its error log.
    fn counters(&self) -> Vec<rollups::RollupRow> {
        rollups::rows_of(
            self.requests
                .iter()
                .filter(|request| request.counts())
                .chain(&self.counted_only)
                .map(NewRequest::as_attempt)
                .chain(self.errors.iter().map(NewError::as_attempt)),
        )
    }
}

/// Writes a batch in one transaction on Postgres, as a few multi-row INSERTs and upserts.
pub async fn write_postgres(
    pool: &diesel_async::pooled_connection::deadpool::Pool<diesel_async::AsyncPgConnection>,
    batch: &Batch,
) -> Result<(), DbError> {
    let counters = batch.counters();
    let (requests, errors, counters) = (&batch.requests, &batch.errors, &counters);
    let mut conn = pool.get().await?;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        for chunk in requests.chunks(ROWS_PER_INSERT) {
            diesel::insert_into(request_logs::table)
                .values(chunk)
                .execute(conn)
                .await?;
        }
        for chunk in errors.chunks(ROWS_PER_INSERT) {
            diesel::insert_into(error_logs::table)
                .values(chunk)
                .execute(conn)
                .await?;
        }
        for chunk in counters.chunks(ROWS_PER_UPSERT) {
            upsert_rollups!(chunk).execute(conn).await?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// Runs `$statement` (a closure of a row array, say `&[NewRequest; N]`) over `$rows` in
/// statements of a fixed number of rows: 256, then 32, 4 and 1 for the rest. diesel caches the
/// prepared statement of a fixed-size array (its query id is static) but prepares a slice's
/// anew each time, and SQLite's parsing and planning of a multi-row INSERT was the largest
/// cost of a small batch (a fifth of a request's instructions, under callgrind).
macro_rules! in_fixed_chunks {
    ($conn:expr, $rows:expr, $statement:expr) => {{
        let mut rest = &$rows[..];
        while !rest.is_empty() {
            rest = if let Some((chunk, tail)) = rest.split_first_chunk::<256>() {
                diesel::RunQueryDsl::execute($statement(chunk), $conn)?;
                tail
            } else if let Some((chunk, tail)) = rest.split_first_chunk::<32>() {
                diesel::RunQueryDsl::execute($statement(chunk), $conn)?;
                tail
            } else if let Some((chunk, tail)) = rest.split_first_chunk::<4>() {
                diesel::RunQueryDsl::execute($statement(chunk), $conn)?;
                tail
            } else if let Some((chunk, tail)) = rest.split_first_chunk::<1>() {
                diesel::RunQueryDsl::execute($statement(chunk), $conn)?;
                tail
            } else {
                &[]
            };
        }
    }};
}

/// Counters per upsert on SQLite: under its 32,766 bound parameters at 21 columns a row.
const SQLITE_ROWS_PER_UPSERT: usize = 1_000;

/// Writes a batch in one transaction (one commit) on SQLite, on the writer thread's own
/// connection (`sqlite_writer.rs`): rows as multi-row INSERTs of a few fixed sizes (at most 256
/// rows, under SQLite's 32,766 bound parameters), each prepared once for the connection's
/// life, and the counters as one upsert.
pub fn write_sqlite(conn: &mut diesel::SqliteConnection, batch: &Batch) -> QueryResult<()> {
    use diesel::Connection as _;
    let counters = batch.counters();
    conn.transaction(|conn| {
        in_fixed_chunks!(conn, batch.requests, |chunk| diesel::insert_into(
            request_logs::table
        )
        .values(chunk));
        in_fixed_chunks!(conn, batch.errors, |chunk| diesel::insert_into(
            error_logs::table
        )
        .values(chunk));
        // diesel never caches an upsert (`DO UPDATE` may be empty): one statement for up to
        // `SQLITE_ROWS_PER_UPSERT` rows, prepared once a batch.
        for chunk in counters.chunks(SQLITE_ROWS_PER_UPSERT) {
            diesel::RunQueryDsl::execute(upsert_rollups!(chunk), conn)?;
        }
        Ok(())
    })
}

/// Where batches are written: a pool on Postgres (batches from several callers run side by
/// side), the one writer thread on SQLite (which has one writer anyway).
#[derive(Clone)]
pub enum Writer {
    Postgres(diesel_async::pooled_connection::deadpool::Pool<diesel_async::AsyncPgConnection>),
    Sqlite(crate::sqlite_writer::SqliteWriter),
}

impl Writer {
    pub fn start(db: &Database, location: &DatabaseLocation) -> Result<Self, DbError> {
        match (db, location) {
            (Database::Postgres(pool), _) => Ok(Writer::Postgres(pool.clone())),
            (Database::Sqlite(_), DatabaseLocation::Sqlite(path)) => Ok(Writer::Sqlite(
                crate::sqlite_writer::SqliteWriter::start(path)?,
            )),
            (Database::Sqlite(_), DatabaseLocation::Postgres(_)) => Err(DbError::Unavailable(
                "a SQLite pool for a Postgres location".to_owned(),
            )),
        }
    }

    /// Writes the records; returns the rows written.
    pub async fn write(
        &self,
        requests: Vec<pb::RequestRecord>,
        errors: Vec<pb::ErrorRecord>,
    ) -> Result<usize, DbError> {
        let batch = Batch::of(requests, errors);
        let rows = batch.rows();
        match self {
            Writer::Postgres(pool) => write_postgres(pool, &batch).await?,
            Writer::Sqlite(writer) => writer.write(batch).await?,
        }
        Ok(rows)
    }
}

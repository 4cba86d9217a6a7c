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

/// Rows per INSERT statement: well under SQLite's bound-parameter limit (17 columns a row).
const ROWS_PER_INSERT: usize = 200;

/// Writes a batch in one transaction (one fsync on SQLite), as a few multi-row INSERTs.
/// diesel-async builds those for Postgres only; on SQLite the batch goes to diesel's own
/// (blocking) connection in one blocking task, where they build too.
pub async fn write(
    db: &Database,
    requests: Vec<pb::RequestRecord>,
    errors: Vec<pb::ErrorRecord>,
) -> Result<usize, DbError> {
    let requests: Vec<NewRequest> = requests.into_iter().map(NewRequest::from).collect();
    let errors: Vec<NewError> = errors.into_iter().map(NewError::from).collect();
    let counters = rollups::rows_of(
        requests
            .iter()
            .filter(|request| request.counts())
            .map(NewRequest::as_attempt)
            .chain(errors.iter().map(NewError::as_attempt)),
    );
    // ATTEMPT records are counted only.
    let requests: Vec<NewRequest> = requests
        .into_iter()
        .filter(|request| request.kind == KIND_CLIENT)
        .collect();
    let written = requests.len() + errors.len();
    match db {
        Database::Postgres(pool) => {
            let (requests, errors, counters) = (&requests, &errors, &counters);
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
        }
        Database::Sqlite(pool) => {
            let mut conn = pool.get().await?;
            conn.spawn_blocking(move |conn| {
                use diesel::Connection as _;
                conn.transaction(|conn| {
                    for chunk in requests.chunks(ROWS_PER_INSERT) {
                        diesel::RunQueryDsl::execute(
                            diesel::insert_into(request_logs::table).values(chunk),
                            conn,
                        )?;
                    }
                    for chunk in errors.chunks(ROWS_PER_INSERT) {
                        diesel::RunQueryDsl::execute(
                            diesel::insert_into(error_logs::table).values(chunk),
                            conn,
                        )?;
                    }
                    for chunk in counters.chunks(ROWS_PER_UPSERT) {
                        diesel::RunQueryDsl::execute(upsert_rollups!(chunk), conn)?;
                    }
                    Ok(())
                })
            })
            .await?;
        }
    }
    Ok(written)
}

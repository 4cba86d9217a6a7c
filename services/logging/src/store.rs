//! Reads and writes of `error_logs` and `request_logs`, the same code on Postgres and SQLite;
//! each batch also adds its attempts to the counters (`rollups.rs`) in the same transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use gb_proto::logging::v1 as pb;
use gb_runtime::database::{Database, DbError};
use gb_runtime::with_connection;

use crate::rollups::{self, ROWS_PER_UPSERT, upsert_rollups};
use crate::schema::{error_logs, request_logs};

/// The most calls one listing returns (the statistics are not read from rows).
const MAX_LISTED_CALLS: i64 = 10_000;

use gb_proto::keys::v1::OutcomeClass;
use gb_runtime::time::{from_ms as to_time, to_ms};

/// An outcome as stored: its label, empty for none (client records).
fn stored_label(class: OutcomeClass) -> String {
    match class {
        OutcomeClass::Unspecified => String::new(),
        class => class.label().to_owned(),
    }
}

/// A stored outcome label back as its class; a label that names none is an error.
fn stored_class(label: &str) -> Result<OutcomeClass, DbError> {
    if label.is_empty() {
        return Ok(OutcomeClass::Unspecified);
    }
    OutcomeClass::from_label(label)
        .ok_or_else(|| DbError::Migration(format!("unknown stored outcome {label:?}")))
}

fn small(value: u32) -> i32 {
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
}

pub const KIND_CLIENT: &str = "client";
pub const KIND_ATTEMPT: &str = "attempt";

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
        }
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
        }
    }
}

/// Rows per INSERT statement: well under SQLite's bound-parameter limit (16 columns a row).
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
    let written = requests.len() + errors.len();
    let counters = rollups::rows_of(
        requests
            .iter()
            .filter(|request| request.kind == KIND_ATTEMPT)
            .map(NewRequest::as_attempt),
    );
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

#[derive(Queryable, Selectable)]
#[diesel(table_name = error_logs)]
struct ErrorRow {
    id: i64,
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
}

impl ErrorRow {
    fn into_log(self) -> Result<pb::ErrorLog, DbError> {
        Ok(pb::ErrorLog {
            id: self.id,
            record: Some(pb::ErrorRecord {
                at_ms: to_ms(self.error_time),
                key_id: self.key_id,
                key_masked: self.key_masked,
                model: self.model_name,
                error_type: self.error_type,
                error_class: stored_class(&self.error_class)?.into(),
                error_code: u32::try_from(self.error_code).unwrap_or(0),
                error_message: self.error_message,
                request_body: self.request_context.unwrap_or_default(),
                client: self.client,
            }),
        })
    }
}

fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// The error logs a listing asks for, as a boxed query of whichever backend `$conn` is.
macro_rules! filtered_errors {
    ($request:expr) => {{
        let request = $request;
        let mut query = error_logs::table.into_boxed();
        if request.key_id > 0 {
            query = query.filter(error_logs::key_id.eq(request.key_id));
        } else if !request.key_search.is_empty() {
            query = query.filter(
                error_logs::key_masked
                    .like(like_pattern(&request.key_search))
                    .escape('\\'),
            );
        }
        if !request.error_search.is_empty() {
            let pattern = like_pattern(&request.error_search);
            query = query.filter(
                error_logs::error_message
                    .like(pattern.clone())
                    .escape('\\')
                    .or(error_logs::error_type.like(pattern).escape('\\')),
            );
        }
        if request.error_code > 0 {
            query = query.filter(error_logs::error_code.eq(small(request.error_code)));
        }
        if request.start_ms > 0 {
            query = query.filter(error_logs::error_time.ge(to_time(request.start_ms)));
        }
        if request.end_ms > 0 {
            query = query.filter(error_logs::error_time.le(to_time(request.end_ms)));
        }
        query
    }};
}

/// What error logs can be sorted by (`""` and `id`: newest first by id).
pub const ERROR_LOG_SORTS: &[&str] = &[
    "",
    "id",
    "request_time",
    "error_time",
    "error_code",
    "model_name",
    "error_type",
    "gemini_key",
];

pub async fn list_errors(
    db: &Database,
    request: &pb::ListErrorLogsRequest,
) -> Result<(Vec<pb::ErrorLog>, u64), DbError> {
    let limit = i64::from(request.limit.clamp(1, 1000));
    let offset = i64::from(request.offset);
    with_connection!(db, |conn| {
        let total: i64 = filtered_errors!(request).count().get_result(conn).await?;
        let query = filtered_errors!(request).select(ErrorRow::as_select());
        let query = match (request.sort_by.as_str(), request.ascending) {
            ("request_time" | "error_time", false) => query.order(error_logs::error_time.desc()),
            ("request_time" | "error_time", true) => query.order(error_logs::error_time.asc()),
            ("error_code", false) => query.order(error_logs::error_code.desc()),
            ("error_code", true) => query.order(error_logs::error_code.asc()),
            ("model_name", false) => query.order(error_logs::model_name.desc()),
            ("model_name", true) => query.order(error_logs::model_name.asc()),
            ("error_type", false) => query.order(error_logs::error_type.desc()),
            ("error_type", true) => query.order(error_logs::error_type.asc()),
            ("gemini_key", false) => query.order(error_logs::key_masked.desc()),
            ("gemini_key", true) => query.order(error_logs::key_masked.asc()),
            (_, true) => query.order(error_logs::id.asc()),
            (_, false) => query.order(error_logs::id.desc()),
        };
        let rows: Vec<ErrorRow> = query
            .then_order_by(error_logs::id.desc())
            .limit(limit)
            .offset(offset)
            .load(conn)
            .await?;
        let logs = rows
            .into_iter()
            .map(ErrorRow::into_log)
            .collect::<Result<_, _>>()?;
        Ok((logs, u64::try_from(total).unwrap_or(0)))
    })
}

pub async fn get_error(db: &Database, id: i64) -> Result<pb::ErrorLog, DbError> {
    with_connection!(db, |conn| {
        let row: ErrorRow = error_logs::table
            .find(id)
            .select(ErrorRow::as_select())
            .first(conn)
            .await?;
        row.into_log()
    })
}

/// The key's error log closest to `at_ms` within the window (and with the status, if given).
pub async fn lookup_error(
    db: &Database,
    request: &pb::LookupErrorLogRequest,
) -> Result<pb::ErrorLog, DbError> {
    let window = i64::from(request.window_seconds.clamp(1, 86_400)) * 1000;
    let (from, to) = (
        to_time(request.at_ms - window),
        to_time(request.at_ms + window),
    );
    let rows: Vec<ErrorRow> = with_connection!(db, |conn| {
        let mut query = error_logs::table
            .filter(error_logs::key_id.eq(request.key_id))
            .filter(error_logs::error_time.between(from, to))
            .select(ErrorRow::as_select())
            .into_boxed();
        if request.status_code > 0 {
            query = query.filter(error_logs::error_code.eq(small(request.status_code)));
        }
        query.limit(1000).load(conn).await?
    });
    rows.into_iter()
        .min_by_key(|row| (to_ms(row.error_time) - request.at_ms).abs())
        .ok_or(DbError::NotFound)?
        .into_log()
}

pub async fn delete_errors(db: &Database, ids: &[i64], all: bool) -> Result<u64, DbError> {
    let deleted = with_connection!(db, |conn| {
        if all {
            diesel::delete(error_logs::table).execute(conn).await?
        } else {
            diesel::delete(error_logs::table.filter(error_logs::id.eq_any(ids)))
                .execute(conn)
                .await?
        }
    });
    Ok(deleted as u64)
}

/// Deletes the logs older than the cutoffs; returns (error logs, request logs) deleted.
pub async fn delete_older(
    db: &Database,
    errors_before: Option<i64>,
    requests_before: Option<i64>,
) -> Result<(u64, u64), DbError> {
    with_connection!(db, |conn| {
        let errors = match errors_before {
            Some(ms) => {
                diesel::delete(error_logs::table.filter(error_logs::error_time.lt(to_time(ms))))
                    .execute(conn)
                    .await?
            }
            None => 0,
        };
        let requests = match requests_before {
            Some(ms) => {
                diesel::delete(
                    request_logs::table.filter(request_logs::request_time.lt(to_time(ms))),
                )
                .execute(conn)
                .await?
            }
            None => 0,
        };
        Ok((errors as u64, requests as u64))
    })
}

/// An upstream attempt, as a listing shows it.
#[derive(Queryable, Selectable)]
#[diesel(table_name = request_logs)]
pub struct AttemptRow {
    pub request_time: NaiveDateTime,
    pub request_method: String,
    pub request_path: String,
    pub model_name: String,
    pub key_id: i64,
    pub key_masked: String,
    pub status_code: i32,
    pub latency_ms: i32,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub client: String,
    pub outcome: String,
}

impl AttemptRow {
    pub fn into_record(self) -> Result<pb::RequestRecord, DbError> {
        Ok(pb::RequestRecord {
            at_ms: to_ms(self.request_time),
            kind: pb::RecordKind::Attempt.into(),
            method: self.request_method,
            path: self.request_path,
            model: self.model_name,
            key_id: self.key_id,
            key_masked: self.key_masked,
            status_code: u32::try_from(self.status_code).unwrap_or(0),
            latency_ms: u32::try_from(self.latency_ms).unwrap_or(0),
            prompt_tokens: u64::try_from(self.prompt_tokens).unwrap_or(0),
            completion_tokens: u64::try_from(self.completion_tokens).unwrap_or(0),
            client: self.client,
            outcome: stored_class(&self.outcome)?.into(),
        })
    }
}

/// Upstream attempts since a time, newest first, for one key (`key_id` > 0) or all: at most
/// `limit` (and [`MAX_LISTED_CALLS`]).
pub async fn attempts_since(
    db: &Database,
    since_ms: i64,
    key_id: i64,
    limit: Option<i64>,
) -> Result<Vec<AttemptRow>, DbError> {
    let since = to_time(since_ms);
    let limit = limit.unwrap_or(MAX_LISTED_CALLS).min(MAX_LISTED_CALLS);
    with_connection!(db, |conn| {
        let mut query = request_logs::table
            .filter(request_logs::kind.eq(KIND_ATTEMPT))
            .filter(request_logs::request_time.ge(since))
            .select(AttemptRow::as_select())
            .into_boxed();
        if key_id > 0 {
            query = query.filter(request_logs::key_id.eq(key_id));
        }
        Ok(query
            .order(request_logs::request_time.desc())
            .then_order_by(request_logs::id.desc())
            .limit(limit)
            .load(conn)
            .await?)
    })
}

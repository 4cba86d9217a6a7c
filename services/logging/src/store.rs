//! Reads of `error_logs` and `request_logs` (the error-log queries, deletion, the call
//! listings), the same code on Postgres and SQLite; their writes are `write.rs`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use gb_proto::keys::v1::OutcomeClass;
use gb_proto::logging::v1 as pb;
use gb_runtime::database::{Database, DbError};
use gb_runtime::time::{from_ms as to_time, to_ms};
use gb_runtime::with_connection;

use crate::schema::{error_logs, request_logs};
use crate::write::small;

/// The most calls one listing returns (the statistics are not read from rows).
const MAX_LISTED_CALLS: i64 = 10_000;

/// What a `request_logs` row records: a client request or an upstream attempt.
pub const KIND_CLIENT: &str = "client";
pub const KIND_ATTEMPT: &str = "attempt";

/// An outcome as stored: its label, empty for none (client records).
pub(crate) fn stored_label(class: OutcomeClass) -> String {
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
    latency_ms: i32,
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
                latency_ms: u32::try_from(self.latency_ms).unwrap_or(0),
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

/// A successful upstream attempt, as a listing shows it: the request-log row it ended.
#[derive(Queryable, Selectable)]
#[diesel(table_name = request_logs)]
struct SuccessRow {
    request_time: NaiveDateTime,
    request_method: String,
    request_path: String,
    model_name: String,
    key_id: i64,
    key_masked: String,
    status_code: i32,
    latency_ms: i32,
    prompt_tokens: i64,
    completion_tokens: i64,
    client: String,
    outcome: String,
    attempts: i32,
    client_label: String,
}

impl SuccessRow {
    fn into_record(self) -> Result<pb::RequestRecord, DbError> {
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
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            label: self.client_label,
        })
    }
}

/// A failed upstream attempt, as a listing shows it: its error log.
#[derive(Queryable, Selectable)]
#[diesel(table_name = error_logs)]
struct FailureRow {
    error_time: NaiveDateTime,
    model_name: String,
    key_id: i64,
    key_masked: String,
    error_type: String,
    error_class: String,
    error_code: i32,
    latency_ms: i32,
    client: String,
}

impl FailureRow {
    fn into_record(self) -> Result<pb::RequestRecord, DbError> {
        Ok(pb::RequestRecord {
            at_ms: to_ms(self.error_time),
            kind: pb::RecordKind::Attempt.into(),
            method: self.error_type,
            model: self.model_name,
            key_id: self.key_id,
            key_masked: self.key_masked,
            status_code: u32::try_from(self.error_code).unwrap_or(0),
            latency_ms: u32::try_from(self.latency_ms).unwrap_or(0),
            client: self.client,
            outcome: stored_class(&self.error_class)?.into(),
            ..Default::default()
        })
    }
}

/// Upstream attempts since a time, newest first, for one key (`key_id` > 0) or all: at most
/// `limit` (and [`MAX_LISTED_CALLS`]). The successes are the request-log rows whose attempt
/// succeeded (each client request's row is its last attempt's), the failures the error logs:
/// every attempt once, the same calls the counters count.
pub async fn attempts_since(
    db: &Database,
    since_ms: i64,
    key_id: i64,
    limit: Option<i64>,
) -> Result<Vec<pb::RequestRecord>, DbError> {
    let since = to_time(since_ms);
    let limit = limit.unwrap_or(MAX_LISTED_CALLS).min(MAX_LISTED_CALLS);
    let success = OutcomeClass::Success.label();
    let (successes, failures): (Vec<SuccessRow>, Vec<FailureRow>) = with_connection!(db, |conn| {
        let mut successes = request_logs::table
            .filter(request_logs::request_time.ge(since))
            .filter(request_logs::outcome.eq(success))
            .select(SuccessRow::as_select())
            .into_boxed();
        let mut failures = error_logs::table
            .filter(error_logs::error_time.ge(since))
            .select(FailureRow::as_select())
            .into_boxed();
        if key_id > 0 {
            successes = successes.filter(request_logs::key_id.eq(key_id));
            failures = failures.filter(error_logs::key_id.eq(key_id));
        }
        let successes = successes
            .order(request_logs::request_time.desc())
            .then_order_by(request_logs::id.desc())
            .limit(limit)
            .load(conn)
            .await?;
        let failures = failures
            .order(error_logs::error_time.desc())
            .then_order_by(error_logs::id.desc())
            .limit(limit)
            .load(conn)
            .await?;
        (successes, failures)
    });
    let mut calls = successes
        .into_iter()
        .map(SuccessRow::into_record)
        .chain(failures.into_iter().map(FailureRow::into_record))
        .collect::<Result<Vec<_>, _>>()?;
    // Newest first; the sort is stable, so rows of one time keep their table's order.
    calls.sort_by_key(|call| std::cmp::Reverse(call.at_ms));
    calls.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(calls)
}

//! The `LoggingService` gRPC contract: writes, the error-log queries and the statistics.

use std::collections::BTreeMap;

use chrono::{Datelike, TimeZone, Utc};
use gb_proto::logging::LoggingError;
use gb_proto::logging::v1 as pb;
use gb_proto::logging::v1::logging_service_server::LoggingService;
use gb_runtime::database::Database;
use gb_runtime::now_ms;
use tonic::{Request, Response, Status};

use crate::retention::Retention;
use crate::store;

pub struct LoggingGrpc {
    pub db: Database,
    pub retention: Retention,
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

fn start_of_month_ms() -> i64 {
    let now = Utc::now();
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .map_or(0, |start| start.timestamp_millis())
}

#[tonic::async_trait]
impl LoggingService for LoggingGrpc {
    async fn write_records(
        &self,
        request: Request<pb::WriteRecordsRequest>,
    ) -> Result<Response<pb::WriteRecordsResponse>, Status> {
        let request = request.into_inner();
        let written = store::write(&self.db, request.requests, request.errors)
            .await
            .map_err(LoggingError::from)?;
        Ok(Response::new(pb::WriteRecordsResponse {
            written: u32::try_from(written).unwrap_or(u32::MAX),
        }))
    }

    async fn list_error_logs(
        &self,
        request: Request<pb::ListErrorLogsRequest>,
    ) -> Result<Response<pb::ListErrorLogsResponse>, Status> {
        let request = request.into_inner();
        if !store::ERROR_LOG_SORTS.contains(&request.sort_by.as_str()) {
            return Err(LoggingError::UnknownSort(request.sort_by).into());
        }
        let (logs, total) = store::list_errors(&self.db, &request)
            .await
            .map_err(LoggingError::from)?;
        Ok(Response::new(pb::ListErrorLogsResponse { logs, total }))
    }

    async fn get_error_log(
        &self,
        request: Request<pb::GetErrorLogRequest>,
    ) -> Result<Response<pb::ErrorLog>, Status> {
        let id = request.into_inner().id;
        Ok(Response::new(
            store::get_error(&self.db, id)
                .await
                .map_err(|error| match error {
                    gb_runtime::database::DbError::NotFound => LoggingError::NoErrorLog(id),
                    other => other.into(),
                })?,
        ))
    }

    async fn lookup_error_log(
        &self,
        request: Request<pb::LookupErrorLogRequest>,
    ) -> Result<Response<pb::ErrorLog>, Status> {
        let request = request.into_inner();
        Ok(Response::new(
            store::lookup_error(&self.db, &request)
                .await
                .map_err(|error| match error {
                    gb_runtime::database::DbError::NotFound => LoggingError::NoErrorLogNear,
                    other => other.into(),
                })?,
        ))
    }

    async fn delete_error_logs(
        &self,
        request: Request<pb::DeleteErrorLogsRequest>,
    ) -> Result<Response<pb::DeleteErrorLogsResponse>, Status> {
        let request = request.into_inner();
        if !request.all && request.ids.is_empty() {
            return Err(LoggingError::Required("ids or all").into());
        }
        let deleted = store::delete_errors(&self.db, &request.ids, request.all)
            .await
            .map_err(LoggingError::from)?;
        Ok(Response::new(pb::DeleteErrorLogsResponse { deleted }))
    }

    async fn call_counts(
        &self,
        _request: Request<pb::CallCountsRequest>,
    ) -> Result<Response<pb::CallCountsResponse>, Status> {
        let now = now_ms();
        Ok(Response::new(pb::CallCountsResponse {
            last_minute: Some(
                store::count_attempts(&self.db, now - MINUTE_MS)
                    .await
                    .map_err(LoggingError::from)?,
            ),
            last_hour: Some(
                store::count_attempts(&self.db, now - HOUR_MS)
                    .await
                    .map_err(LoggingError::from)?,
            ),
            last_day: Some(
                store::count_attempts(&self.db, now - DAY_MS)
                    .await
                    .map_err(LoggingError::from)?,
            ),
            this_month: Some(
                store::count_attempts(&self.db, start_of_month_ms())
                    .await
                    .map_err(LoggingError::from)?,
            ),
        }))
    }

    async fn list_calls(
        &self,
        request: Request<pb::ListCallsRequest>,
    ) -> Result<Response<pb::ListCallsResponse>, Status> {
        let request = request.into_inner();
        let limit = (request.limit > 0).then_some(i64::from(request.limit));
        let rows = store::attempts_since(&self.db, request.since_ms, request.key_id, limit)
            .await
            .map_err(LoggingError::from)?;
        Ok(Response::new(pb::ListCallsResponse {
            calls: rows
                .into_iter()
                .map(store::AttemptRow::into_record)
                .collect::<Result<_, _>>()
                .map_err(LoggingError::from)?,
        }))
    }

    async fn attention_keys(
        &self,
        request: Request<pb::AttentionKeysRequest>,
    ) -> Result<Response<pb::AttentionKeysResponse>, Status> {
        let request = request.into_inner();
        let rows = store::attempts_since(&self.db, request.since_ms, 0, None)
            .await
            .map_err(LoggingError::from)?;
        let mut counts: BTreeMap<i64, pb::KeyCount> = BTreeMap::new();
        for row in rows {
            if u32::try_from(row.status_code).ok() != Some(request.status_code) || row.key_id <= 0 {
                continue;
            }
            let entry = counts.entry(row.key_id).or_insert_with(|| pb::KeyCount {
                key_id: row.key_id,
                key_masked: row.key_masked.clone(),
                count: 0,
            });
            entry.count += 1;
        }
        let mut keys: Vec<pb::KeyCount> = counts.into_values().collect();
        keys.sort_by(|a, b| b.count.cmp(&a.count).then(a.key_id.cmp(&b.key_id)));
        keys.truncate(request.limit.clamp(1, 1000) as usize);
        Ok(Response::new(pb::AttentionKeysResponse { keys }))
    }

    async fn key_model_usage(
        &self,
        request: Request<pb::KeyModelUsageRequest>,
    ) -> Result<Response<pb::KeyModelUsageResponse>, Status> {
        let request = request.into_inner();
        if request.key_id <= 0 {
            return Err(LoggingError::Required("key_id").into());
        }
        let rows = store::attempts_since(&self.db, request.since_ms, request.key_id, None)
            .await
            .map_err(LoggingError::from)?;
        let mut models: BTreeMap<String, pb::ModelCount> = BTreeMap::new();
        for row in rows {
            let entry = models
                .entry(row.model_name.clone())
                .or_insert_with(|| pb::ModelCount {
                    model: row.model_name.clone(),
                    ..Default::default()
                });
            entry.calls += 1;
            entry.success += u64::from(row.is_success);
            entry.prompt_tokens += u64::try_from(row.prompt_tokens).unwrap_or(0);
            entry.completion_tokens += u64::try_from(row.completion_tokens).unwrap_or(0);
        }
        Ok(Response::new(pb::KeyModelUsageResponse {
            models: models.into_values().collect(),
        }))
    }

    async fn token_usage(
        &self,
        request: Request<pb::TokenUsageRequest>,
    ) -> Result<Response<pb::TokenUsageResponse>, Status> {
        let request = request.into_inner();
        let by_client = request.group_by() == pb::TokenGrouping::Client;
        let rows = store::attempts_since(&self.db, request.since_ms, 0, None)
            .await
            .map_err(LoggingError::from)?;
        let mut usage: BTreeMap<(String, String), pb::TokenUsageRow> = BTreeMap::new();
        for row in rows.into_iter().filter(|row| row.is_success) {
            let day = row.request_time.date().format("%Y-%m-%d").to_string();
            let (group, key_id) = if by_client {
                (row.client.clone(), 0)
            } else {
                (row.key_masked.clone(), row.key_id)
            };
            let entry = usage
                .entry((day.clone(), format!("{group}#{key_id}")))
                .or_insert_with(|| pb::TokenUsageRow {
                    day,
                    group,
                    key_id,
                    ..Default::default()
                });
            entry.calls += 1;
            entry.prompt_tokens += u64::try_from(row.prompt_tokens).unwrap_or(0);
            entry.completion_tokens += u64::try_from(row.completion_tokens).unwrap_or(0);
        }
        Ok(Response::new(pb::TokenUsageResponse {
            rows: usage.into_values().collect(),
        }))
    }

    async fn apply_retention(
        &self,
        _request: Request<pb::ApplyRetentionRequest>,
    ) -> Result<Response<pb::ApplyRetentionResponse>, Status> {
        let (errors, requests) = self.retention.apply().await.map_err(LoggingError::from)?;
        Ok(Response::new(pb::ApplyRetentionResponse {
            error_logs_deleted: errors,
            request_logs_deleted: requests,
        }))
    }
}

//! The `LoggingService` gRPC contract: writes, the error-log queries and the statistics.

use std::collections::BTreeMap;

use gb_proto::logging::LoggingError;
use gb_proto::logging::v1 as pb;
use gb_proto::logging::v1::logging_service_server::LoggingService;
use gb_runtime::database::Database;
use gb_runtime::now_ms;
use tonic::{Request, Response, Status};

use crate::retention::Retention;
use crate::{responses, stats, store, write};

pub struct LoggingGrpc {
    pub db: Database,
    pub writer: write::Writer,
    pub retention: Retention,
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A counter as the contract carries it.
fn unsigned(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

#[tonic::async_trait]
impl LoggingService for LoggingGrpc {
    async fn write_records(
        &self,
        request: Request<pb::WriteRecordsRequest>,
    ) -> Result<Response<pb::WriteRecordsResponse>, Status> {
        let request = request.into_inner();
        let written = self
            .writer
            .write(request.requests, request.errors)
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
        let counts = async |since_ms| -> Result<Option<pb::Counts>, Status> {
            let sums = stats::total(&self.db, since_ms, now)
                .await
                .map_err(LoggingError::from)?;
            let (total, success) = (unsigned(sums.calls), unsigned(sums.successes));
            Ok(Some(pb::Counts {
                total,
                success,
                failure: total.saturating_sub(success),
            }))
        };
        Ok(Response::new(pb::CallCountsResponse {
            last_minute: counts(now - MINUTE_MS).await?,
            last_hour: counts(now - HOUR_MS).await?,
            last_day: counts(now - DAY_MS).await?,
            this_month: counts(gb_runtime::time::month_start_ms(now, 0)).await?,
        }))
    }

    async fn call_series(
        &self,
        request: Request<pb::CallSeriesRequest>,
    ) -> Result<Response<pb::CallSeriesResponse>, Status> {
        let request = request.into_inner();
        let width_s = match request.width_s {
            60 => crate::rollups::MINUTE_S,
            3_600 => crate::rollups::HOUR_S,
            86_400 => crate::rollups::DAY_S,
            other => return Err(LoggingError::UnknownWidth(other).into()),
        };
        let points = stats::series(&self.db, width_s, request.since_ms)
            .await
            .map_err(LoggingError::from)?;
        let sums = stats::total(&self.db, request.since_ms, now_ms())
            .await
            .map_err(LoggingError::from)?;
        Ok(Response::new(pb::CallSeriesResponse {
            points: points
                .into_iter()
                .map(|(bucket_ms, calls, success)| pb::SeriesPoint {
                    bucket_ms,
                    calls: unsigned(calls),
                    success: unsigned(success),
                })
                .collect(),
            calls: unsigned(sums.calls),
            latency_p50_ms: sums.latency_quantile_ms(0.5),
            latency_p90_ms: sums.latency_quantile_ms(0.9),
            latency_p99_ms: sums.latency_quantile_ms(0.99),
        }))
    }

    async fn list_calls(
        &self,
        request: Request<pb::ListCallsRequest>,
    ) -> Result<Response<pb::ListCallsResponse>, Status> {
        let request = request.into_inner();
        let limit = (request.limit > 0).then_some(i64::from(request.limit));
        let calls = store::attempts_since(&self.db, request.since_ms, request.key_id, limit)
            .await
            .map_err(LoggingError::from)?;
        Ok(Response::new(pb::ListCallsResponse { calls }))
    }

    async fn attention_keys(
        &self,
        request: Request<pb::AttentionKeysRequest>,
    ) -> Result<Response<pb::AttentionKeysResponse>, Status> {
        let request = request.into_inner();
        let status_code = i32::try_from(request.status_code).unwrap_or(i32::MAX);
        let counts = stats::per_key_with_status(&self.db, request.since_ms, now_ms(), status_code)
            .await
            .map_err(LoggingError::from)?;
        let mut keys: Vec<pb::KeyCount> = counts
            .into_iter()
            .map(|((key_id, key_masked), count)| pb::KeyCount {
                key_id,
                key_masked,
                count: unsigned(count),
            })
            .collect();
        keys.sort_by(|a, b| b.count.cmp(&a.count).then(a.key_id.cmp(&b.key_id)));
        keys.truncate(request.limit.clamp(1, 1000) as usize);
        Ok(Response::new(pb::AttentionKeysResponse { keys }))
    }

    async fn key_totals(
        &self,
        request: Request<pb::KeyTotalsRequest>,
    ) -> Result<Response<pb::KeyTotalsResponse>, Status> {
        let keys = stats::per_key(&self.db, request.get_ref().since_ms, now_ms())
            .await
            .map_err(LoggingError::from)?;
        Ok(Response::new(pb::KeyTotalsResponse {
            keys: keys
                .into_iter()
                .map(|(key_id, sums)| pb::KeyTotal {
                    key_id,
                    calls: unsigned(sums.calls),
                    success: unsigned(sums.successes),
                    prompt_tokens: unsigned(sums.prompt_tokens),
                    completion_tokens: unsigned(sums.completion_tokens),
                })
                .collect(),
        }))
    }

    async fn key_model_usage(
        &self,
        request: Request<pb::KeyModelUsageRequest>,
    ) -> Result<Response<pb::KeyModelUsageResponse>, Status> {
        let request = request.into_inner();
        if request.key_id <= 0 {
            return Err(LoggingError::Required("key_id").into());
        }
        let models = stats::per_model_of_key(&self.db, request.key_id, request.since_ms, now_ms())
            .await
            .map_err(LoggingError::from)?;
        Ok(Response::new(pb::KeyModelUsageResponse {
            models: models
                .into_iter()
                .map(|(model, sums)| pb::ModelCount {
                    model,
                    calls: unsigned(sums.calls),
                    success: unsigned(sums.successes),
                    prompt_tokens: unsigned(sums.prompt_tokens),
                    completion_tokens: unsigned(sums.completion_tokens),
                    latency_mean_ms: u32::try_from(
                        sums.latency_ms_sum.checked_div(sums.calls).unwrap_or(0),
                    )
                    .unwrap_or(u32::MAX),
                    latency_p50_ms: sums.latency_quantile_ms(0.5),
                    latency_p99_ms: sums.latency_quantile_ms(0.99),
                })
                .collect(),
        }))
    }

    async fn token_usage(
        &self,
        request: Request<pb::TokenUsageRequest>,
    ) -> Result<Response<pb::TokenUsageResponse>, Status> {
        let request = request.into_inner();
        let by_client = request.group_by() == pb::TokenGrouping::Client;
        let rows = stats::successes_per_bucket(&self.db, request.since_ms, now_ms(), by_client)
            .await
            .map_err(LoggingError::from)?;
        let mut usage: BTreeMap<(String, String, i64), pb::TokenUsageRow> = BTreeMap::new();
        for row in rows {
            let day = gb_runtime::time::from_ms(row.bucket_ms)
                .date()
                .format("%Y-%m-%d")
                .to_string();
            let entry = usage
                .entry((day.clone(), row.group.clone(), row.key_id))
                .or_insert_with(|| pb::TokenUsageRow {
                    day,
                    group: row.group,
                    key_id: row.key_id,
                    ..Default::default()
                });
            entry.calls += unsigned(row.calls);
            entry.prompt_tokens += unsigned(row.prompt_tokens);
            entry.completion_tokens += unsigned(row.completion_tokens);
        }
        Ok(Response::new(pb::TokenUsageResponse {
            rows: usage.into_values().collect(),
        }))
    }

    async fn put_response(
        &self,
        request: Request<pb::StoredResponse>,
    ) -> Result<Response<pb::PutResponseResponse>, Status> {
        let stored = request.into_inner();
        if stored.id.is_empty() || stored.client.is_empty() {
            return Err(LoggingError::Required("id and client").into());
        }
        responses::put(&self.db, &stored)
            .await
            .map_err(LoggingError::from)?;
        Ok(Response::new(pb::PutResponseResponse {}))
    }

    async fn get_response(
        &self,
        request: Request<pb::ResponseKey>,
    ) -> Result<Response<pb::StoredResponse>, Status> {
        let key = request.into_inner();
        let stored = responses::get(&self.db, &key)
            .await
            .map_err(|error| match error {
                gb_runtime::database::DbError::NotFound => LoggingError::NoResponse(key.id.clone()),
                other => other.into(),
            })?;
        Ok(Response::new(stored))
    }

    async fn delete_response(
        &self,
        request: Request<pb::ResponseKey>,
    ) -> Result<Response<pb::DeleteResponseResponse>, Status> {
        let key = request.into_inner();
        if !responses::delete(&self.db, &key)
            .await
            .map_err(LoggingError::from)?
        {
            return Err(LoggingError::NoResponse(key.id).into());
        }
        Ok(Response::new(pb::DeleteResponseResponse {}))
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

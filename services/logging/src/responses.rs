//! The `responses` table: Responses API objects kept for `previous_response_id` and
//! `GET /v1/responses/{id}` (OpenAI's `store`). Each row is its caller's: another caller's id
//! reads as unknown. Deleted with the request logs' retention.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use gb_proto::logging::v1 as pb;
use gb_runtime::database::{Database, DbError};
use gb_runtime::time::{from_ms as to_time, to_ms};
use gb_runtime::with_connection;

use crate::schema::responses;

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = responses)]
struct ResponseRow {
    id: String,
    client: String,
    created_at: NaiveDateTime,
    response: String,
    contents: String,
}

/// Keeps a response (its id is new: ids are random).
pub async fn put(db: &Database, stored: &pb::StoredResponse) -> Result<(), DbError> {
    // The gateway sends JSON it serialized: UTF-8 always.
    let row = ResponseRow {
        id: stored.id.clone(),
        client: stored.client.clone(),
        created_at: to_time(stored.created_at_ms),
        response: String::from_utf8_lossy(&stored.response).into_owned(),
        contents: String::from_utf8_lossy(&stored.contents).into_owned(),
    };
    with_connection!(db, |conn| {
        diesel::insert_into(responses::table)
            .values(&row)
            .execute(conn)
            .await?;
    });
    Ok(())
}

pub async fn get(db: &Database, key: &pb::ResponseKey) -> Result<pb::StoredResponse, DbError> {
    let row: ResponseRow = with_connection!(db, |conn| {
        responses::table
            .filter(responses::id.eq(&key.id))
            .filter(responses::client.eq(&key.client))
            .select(ResponseRow::as_select())
            .first(conn)
            .await?
    });
    Ok(pb::StoredResponse {
        id: row.id,
        client: row.client,
        created_at_ms: to_ms(row.created_at),
        response: row.response.into_bytes().into(),
        contents: row.contents.into_bytes().into(),
    })
}

/// Whether there was such a response of this caller.
pub async fn delete(db: &Database, key: &pb::ResponseKey) -> Result<bool, DbError> {
    let deleted = with_connection!(db, |conn| {
        diesel::delete(
            responses::table
                .filter(responses::id.eq(&key.id))
                .filter(responses::client.eq(&key.client)),
        )
        .execute(conn)
        .await?
    });
    Ok(deleted > 0)
}

/// Deletes the responses made before `before_ms`.
pub async fn delete_older(db: &Database, before_ms: i64) -> Result<u64, DbError> {
    let deleted = with_connection!(db, |conn| {
        diesel::delete(responses::table.filter(responses::created_at.lt(to_time(before_ms))))
            .execute(conn)
            .await?
    });
    Ok(deleted as u64)
}

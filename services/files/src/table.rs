//! The `files` rows and their upstream copies: who may see a file, and the queries.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use gb_proto::files::v1 as pb;
use gb_proto::files::{FilesError, FilesResult};
use gb_runtime::database::Database;
use gb_runtime::with_connection;

use crate::schema::{file_upstream_copies, files};

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = files)]
pub struct FileRow {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub filename: String,
    pub filesize: i64,
    pub filetype: String,
    pub upload_time: i64,
    pub sha256: String,
    pub owner: String,
    pub purpose: String,
    pub display_name: String,
    pub location: String,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = file_upstream_copies)]
struct CopyRow {
    file_id: i64,
    key_id: i64,
    name: String,
    uri: String,
    expires_at: i64,
}

/// Who may see which files: the owner, an admin caller, everyone when isolation is off.
#[derive(Clone, Copy)]
pub struct Visibility<'a> {
    pub caller: &'a pb::Caller,
    pub isolated: bool,
}

impl Visibility<'_> {
    /// The owner to filter on, or none (every file).
    fn owner(&self) -> Option<&str> {
        (self.isolated && !self.caller.admin).then_some(self.caller.name.as_str())
    }
}

impl FileRow {
    pub fn to_proto(&self, copies: Vec<pb::UpstreamCopy>, admin: bool) -> pb::File {
        pb::File {
            id: self.id,
            filename: self.filename.clone(),
            filesize: self.filesize,
            filetype: self.filetype.clone(),
            upload_time_ms: self.upload_time,
            sha256: self.sha256.clone(),
            purpose: self.purpose.clone(),
            owner: if admin {
                self.owner.clone()
            } else {
                String::new()
            },
            display_name: self.display_name.clone(),
            copies,
        }
    }
}

/// One page of a listing.
pub struct Page<'a> {
    pub limit: i64,
    pub offset: i64,
    pub before_id: Option<i64>,
    pub purpose: Option<&'a str>,
}

pub struct FilesTable {
    db: Database,
}

impl FilesTable {
    pub fn new(db: Database) -> Self {
        FilesTable { db }
    }

    pub async fn insert(&self, row: &FileRow) -> FilesResult<FileRow> {
        Ok(with_connection!(&self.db, |conn| {
            diesel::insert_into(files::table)
                .values(row)
                .returning(FileRow::as_returning())
                .get_result(conn)
                .await
                .map_err(gb_runtime::database::DbError::from)?
        }))
    }

    /// A file the caller may see, else NOT_FOUND (another client's file is not disclosed).
    pub async fn visible(&self, id: i64, who: Visibility<'_>) -> FilesResult<FileRow> {
        let row: Option<FileRow> = with_connection!(&self.db, |conn| {
            files::table
                .find(id)
                .select(FileRow::as_select())
                .first(conn)
                .await
                .optional()
                .map_err(gb_runtime::database::DbError::from)?
        });
        row.filter(|row| who.owner().is_none_or(|owner| owner == row.owner))
            .ok_or_else(|| FilesError::NotFound(format!("file-{id}")))
    }

    /// The caller's files, newest first, and how many there are (before the page's cursor).
    pub async fn list(
        &self,
        who: Visibility<'_>,
        page: Page<'_>,
    ) -> FilesResult<(Vec<FileRow>, i64)> {
        let owner = who.owner().map(str::to_owned);
        let purpose = page.purpose.map(str::to_owned);
        Ok(with_connection!(&self.db, |conn| {
            let mut rows = files::table
                .select(FileRow::as_select())
                .order(files::id.desc())
                .limit(page.limit)
                .offset(page.offset)
                .into_boxed();
            let mut count = files::table.count().into_boxed();
            if let Some(owner) = &owner {
                rows = rows.filter(files::owner.eq(owner.clone()));
                count = count.filter(files::owner.eq(owner.clone()));
            }
            if let Some(purpose) = &purpose {
                rows = rows.filter(files::purpose.eq(purpose.clone()));
                count = count.filter(files::purpose.eq(purpose.clone()));
            }
            if let Some(before) = page.before_id {
                rows = rows.filter(files::id.lt(before));
                count = count.filter(files::id.lt(before));
            }
            let page = rows;
            let rows = page
                .load(conn)
                .await
                .map_err(gb_runtime::database::DbError::from)?;
            let total: i64 = count
                .get_result(conn)
                .await
                .map_err(gb_runtime::database::DbError::from)?;
            (rows, total)
        }))
    }

    /// Removes the row (its copies go with it).
    pub async fn delete(&self, id: i64) -> FilesResult<()> {
        with_connection!(&self.db, |conn| {
            diesel::delete(
                file_upstream_copies::table.filter(file_upstream_copies::file_id.eq(id)),
            )
            .execute(conn)
            .await
            .map_err(gb_runtime::database::DbError::from)?;
            diesel::delete(files::table.find(id))
                .execute(conn)
                .await
                .map_err(gb_runtime::database::DbError::from)?;
        });
        Ok(())
    }

    /// The copies of these files at Google that have not expired, by file.
    pub async fn copies(
        &self,
        ids: &[i64],
        now_ms: i64,
    ) -> FilesResult<std::collections::HashMap<i64, Vec<pb::UpstreamCopy>>> {
        let rows: Vec<CopyRow> = with_connection!(&self.db, |conn| {
            file_upstream_copies::table
                .filter(file_upstream_copies::file_id.eq_any(ids.to_vec()))
                .filter(file_upstream_copies::expires_at.gt(now_ms))
                .order(file_upstream_copies::key_id)
                .select(CopyRow::as_select())
                .load(conn)
                .await
                .map_err(gb_runtime::database::DbError::from)?
        });
        let mut by_file = std::collections::HashMap::<i64, Vec<pb::UpstreamCopy>>::new();
        for row in rows {
            by_file
                .entry(row.file_id)
                .or_default()
                .push(pb::UpstreamCopy {
                    key_id: row.key_id,
                    name: row.name,
                    uri: row.uri,
                    expires_at_ms: row.expires_at,
                });
        }
        Ok(by_file)
    }

    /// Remembers a copy (replacing the key's earlier one).
    pub async fn record_copy(&self, file_id: i64, copy: &pb::UpstreamCopy) -> FilesResult<()> {
        let row = CopyRow {
            file_id,
            key_id: copy.key_id,
            name: copy.name.clone(),
            uri: copy.uri.clone(),
            expires_at: copy.expires_at_ms,
        };
        self.forget_copy(file_id, copy.key_id).await?;
        with_connection!(&self.db, |conn| {
            diesel::insert_into(file_upstream_copies::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(gb_runtime::database::DbError::from)?;
        });
        Ok(())
    }

    pub async fn forget_copy(&self, file_id: i64, key_id: i64) -> FilesResult<()> {
        with_connection!(&self.db, |conn| {
            diesel::delete(
                file_upstream_copies::table
                    .filter(file_upstream_copies::file_id.eq(file_id))
                    .filter(file_upstream_copies::key_id.eq(key_id)),
            )
            .execute(conn)
            .await
            .map_err(gb_runtime::database::DbError::from)?;
        });
        Ok(())
    }

    /// Forgets the copies past their expiry (Google has deleted them); answers how many.
    pub async fn forget_expired_copies(&self, now_ms: i64) -> FilesResult<usize> {
        Ok(with_connection!(&self.db, |conn| {
            diesel::delete(
                file_upstream_copies::table.filter(file_upstream_copies::expires_at.le(now_ms)),
            )
            .execute(conn)
            .await
            .map_err(gb_runtime::database::DbError::from)?
        }))
    }
}

//! Google's resumable uploads: a session started by one gateway replica may be continued by
//! any other, so it lives in the table (`file_upload_sessions`) and its content in the store,
//! one object per chunk. The last chunk joins the parts into the file (streamed, like any
//! upload) and removes them.

use bytes::Bytes;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures::{Stream, StreamExt, TryStreamExt};
use gb_proto::files::v1 as pb;
use gb_proto::files::{FilesError, FilesResult};
use gb_runtime::database::{Database, DbError};
use gb_runtime::with_connection;

use crate::files::Files;
use crate::schema::file_upload_sessions as sessions;

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = sessions)]
struct SessionRow {
    id: String,
    owner: String,
    filename: String,
    filetype: String,
    purpose: String,
    display_name: String,
    declared_size: i64,
    received: i64,
    parts: i32,
    state: String,
    file_id: Option<i64>,
    created_at: i64,
}

const OPEN: &str = "open";
const FINAL: &str = "final";
const CANCELLED: &str = "cancelled";

/// How long an unfinished session is kept.
pub const SESSION_LIFETIME_MS: i64 = 24 * 3600 * 1000;

fn part_location(session: &str, part: i32) -> String {
    format!("sessions/{session}/{part:06}")
}

impl SessionRow {
    fn owner(&self) -> pb::Caller {
        pb::Caller {
            name: self.owner.clone(),
            admin: false,
        }
    }

    fn to_proto(&self, file: Option<pb::File>) -> pb::UploadSession {
        pb::UploadSession {
            id: self.id.clone(),
            received: self.received,
            file,
            declared_size: self.declared_size,
            cancelled: self.state == CANCELLED,
        }
    }

    /// The file the session stores: its starter's.
    fn start(&self) -> pb::UploadStart {
        pb::UploadStart {
            caller: Some(self.owner()),
            filename: self.filename.clone(),
            filetype: self.filetype.clone(),
            purpose: self.purpose.clone(),
            display_name: self.display_name.clone(),
            declared_size: Some(self.received),
        }
    }
}

pub struct Sessions {
    db: Database,
}

impl Sessions {
    pub fn new(db: Database) -> Self {
        Sessions { db }
    }

    async fn load(&self, id: &str, caller: &pb::Caller) -> FilesResult<SessionRow> {
        let row: Option<SessionRow> = with_connection!(&self.db, |conn| {
            sessions::table
                .find(id.to_owned())
                .select(SessionRow::as_select())
                .first(conn)
                .await
                .optional()
                .map_err(DbError::from)?
        });
        // A session is its starter's, whatever the isolation: its id travels in a URL.
        row.filter(|row| caller.admin || row.owner == caller.name)
            .ok_or_else(|| FilesError::SessionNotFound(id.to_owned()))
    }

    pub async fn start(
        &self,
        files: &Files,
        start: pb::UploadStart,
    ) -> FilesResult<pb::UploadSession> {
        let declared = start.declared_size.unwrap_or(0);
        files.check_declared(Some(declared))?;
        let row = SessionRow {
            id: uuid::Uuid::new_v4().simple().to_string(),
            owner: start.caller.unwrap_or_default().name,
            filename: start.filename,
            filetype: start.filetype,
            purpose: start.purpose,
            display_name: start.display_name,
            declared_size: declared,
            received: 0,
            parts: 0,
            state: OPEN.into(),
            file_id: None,
            created_at: gb_runtime::now_ms(),
        };
        with_connection!(&self.db, |conn| {
            diesel::insert_into(sessions::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(DbError::from)?;
        });
        Ok(row.to_proto(None))
    }

    pub async fn get(
        &self,
        files: &Files,
        caller: &pb::Caller,
        id: &str,
    ) -> FilesResult<pb::UploadSession> {
        let row = self.load(id, caller).await?;
        let file = match row.file_id {
            Some(file_id) => Some(files.get(caller, file_id).await?.1),
            None => None,
        };
        Ok(row.to_proto(file))
    }

    pub async fn cancel(
        &self,
        files: &Files,
        caller: &pb::Caller,
        id: &str,
    ) -> FilesResult<pb::UploadSession> {
        let mut row = self.load(id, caller).await?;
        if row.state == OPEN {
            self.set_state(id, OPEN, CANCELLED, None).await?;
            files
                .store
                .delete_quietly((0..row.parts).map(|part| part_location(id, part)))
                .await;
            row.state = CANCELLED.into();
        }
        Ok(row.to_proto(None))
    }

    /// Moves a session from one state to another; false when another replica moved it first.
    async fn set_state(
        &self,
        id: &str,
        from: &str,
        to: &str,
        file_id: Option<i64>,
    ) -> FilesResult<bool> {
        let changed = with_connection!(&self.db, |conn| {
            diesel::update(
                sessions::table
                    .filter(sessions::id.eq(id.to_owned()))
                    .filter(sessions::state.eq(from.to_owned())),
            )
            .set((
                sessions::state.eq(to.to_owned()),
                sessions::file_id.eq(file_id),
            ))
            .execute(conn)
            .await
            .map_err(DbError::from)?
        });
        Ok(changed == 1)
    }

    /// Adds a chunk at `chunk.offset` (the bytes received so far); with `finalize`, stores the
    /// file. A chunk that another replica added first, or at the wrong offset, is refused and
    /// nothing of it kept.
    pub async fn append<S>(
        &self,
        files: &Files,
        chunk: pb::SessionChunk,
        data: S,
    ) -> FilesResult<pb::UploadSession>
    where
        S: Stream<Item = FilesResult<Bytes>> + Send,
    {
        let caller = chunk.caller.clone().unwrap_or_default();
        let mut row = self.load(&chunk.session_id, &caller).await?;
        if row.state != OPEN {
            return Err(FilesError::SessionClosed(row.id));
        }
        if chunk.offset != row.received {
            return Err(FilesError::WrongOffset {
                given: chunk.offset,
                received: row.received,
            });
        }
        let (max_bytes, max_mb) = files.max_bytes();
        let limit = if row.declared_size > 0 {
            (row.declared_size as u64).min(max_bytes)
        } else {
            max_bytes
        };
        let location = part_location(&row.id, row.parts);
        let mut writer = files.store.writer(&location);
        let mut data = std::pin::pin!(data);
        while let Some(piece) = data.next().await {
            let written = match piece {
                Ok(bytes)
                    if row.received as u64 + writer.written() + bytes.len() as u64 > limit =>
                {
                    Err(if limit < max_bytes {
                        FilesError::InvalidArgument(format!(
                            "more bytes than the {} declared at the start",
                            row.declared_size
                        ))
                    } else {
                        FilesError::TooLarge { max_mb }
                    })
                }
                Ok(bytes) => writer.write(&bytes).await,
                Err(error) => Err(error),
            };
            if let Err(error) = written {
                writer.abort().await;
                return Err(error);
            }
        }
        let added = writer.written() as i64;
        if added > 0 {
            writer.finish().await?;
        } else {
            writer.abort().await;
        }
        let parts = row.parts + i32::from(added > 0);
        let advanced = with_connection!(&self.db, |conn| {
            diesel::update(
                sessions::table
                    .filter(sessions::id.eq(row.id.clone()))
                    .filter(sessions::state.eq(OPEN))
                    .filter(sessions::received.eq(row.received)),
            )
            .set((
                sessions::received.eq(row.received + added),
                sessions::parts.eq(parts),
            ))
            .execute(conn)
            .await
            .map_err(DbError::from)?
        });
        if advanced != 1 {
            if added > 0 {
                files.store.delete_quietly([location]).await;
            }
            return Err(FilesError::WrongOffset {
                given: chunk.offset,
                received: self.load(&row.id, &caller).await?.received,
            });
        }
        row.received += added;
        row.parts = parts;
        if !chunk.finalize {
            return Ok(row.to_proto(None));
        }
        self.finalize(files, row).await
    }

    async fn finalize(&self, files: &Files, row: SessionRow) -> FilesResult<pb::UploadSession> {
        if row.declared_size > 0 && row.received != row.declared_size {
            return Err(FilesError::InvalidArgument(format!(
                "finalized after {} bytes, {} were declared",
                row.received, row.declared_size
            )));
        }
        let store = files.store.clone();
        let locations: Vec<String> = (0..row.parts)
            .map(|part| part_location(&row.id, part))
            .collect();
        let joined = futures::stream::iter(locations.clone())
            .then(move |location| {
                let store = store.clone();
                async move { store.read(&location, None).await }
            })
            .try_flatten();
        let file = files.store(&row.start(), joined).await?;
        if !self.set_state(&row.id, OPEN, FINAL, Some(file.id)).await? {
            // Another replica finalized or cancelled it meanwhile: this copy goes.
            files.delete(&row.owner(), file.id).await?;
            return Err(FilesError::SessionClosed(row.id));
        }
        files.store.delete_quietly(locations).await;
        Ok(row.to_proto(Some(file)))
    }

    /// Drops the sessions left unfinished (and their parts) for longer than a day, and the
    /// closed ones as old; answers how many.
    pub async fn expire(&self, files: &Files, now_ms: i64) -> FilesResult<usize> {
        let before = now_ms - SESSION_LIFETIME_MS;
        let old: Vec<SessionRow> = with_connection!(&self.db, |conn| {
            sessions::table
                .filter(sessions::created_at.lt(before))
                .select(SessionRow::as_select())
                .load(conn)
                .await
                .map_err(DbError::from)?
        });
        for row in &old {
            if row.state == OPEN {
                files
                    .store
                    .delete_quietly((0..row.parts).map(|part| part_location(&row.id, part)))
                    .await;
            }
            with_connection!(&self.db, |conn| {
                diesel::delete(sessions::table.find(row.id.clone()))
                    .execute(conn)
                    .await
                    .map_err(DbError::from)?;
            });
        }
        Ok(old.len())
    }
}

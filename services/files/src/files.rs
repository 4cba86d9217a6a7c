//! What the service does with a file, whichever RPC asks: store a stream of bytes as a new
//! file under the size limit, read one back, list, delete.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use gb_proto::files::v1 as pb;
use gb_proto::files::{FilesError, FilesResult};
use gb_runtime::live::LiveSettings;

use crate::store::ContentStore;
use crate::table::{FileRow, FilesTable, Visibility};

pub struct Files {
    pub table: FilesTable,
    pub store: ContentStore,
    pub live: LiveSettings,
}

/// What a new file is called and typed: the name kept as given (without a path), the type
/// from the client, else guessed from the name.
fn described(start: &pb::UploadStart) -> FilesResult<(String, String)> {
    let filename = start
        .filename
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let filename = if filename.is_empty() {
        "file".to_owned()
    } else {
        filename
    };
    if filename.chars().count() > 512 || filename.contains('\0') {
        return Err(FilesError::InvalidArgument(
            "filename: at most 512 characters, no NUL".into(),
        ));
    }
    let filetype = match start.filetype.trim() {
        "" | "application/octet-stream" => mime_guess_from(&filename),
        given => given.to_owned(),
    };
    Ok((filename, filetype))
}

fn mime_guess_from(filename: &str) -> String {
    mime_guess::from_path(filename)
        .first_or_octet_stream()
        .essence_str()
        .to_owned()
}

impl Files {
    /// Who may see which files, for `caller`, under the current FILES_USER_ISOLATION_ENABLED.
    fn visibility<'a>(&self, caller: &'a pb::Caller) -> Visibility<'a> {
        Visibility {
            caller,
            isolated: self.live.current().files.files_user_isolation_enabled,
        }
    }

    /// FILES_MAX_SIZE_MB in bytes.
    pub fn max_bytes(&self) -> (u64, u64) {
        let max_mb = u64::from(self.live.current().files.files_max_size_mb);
        (max_mb * 1024 * 1024, max_mb)
    }

    pub fn check_declared(&self, declared: Option<i64>) -> FilesResult<()> {
        let (max_bytes, max_mb) = self.max_bytes();
        match declared {
            Some(size) if size < 0 => Err(FilesError::InvalidArgument(
                "the declared size is negative".into(),
            )),
            Some(size) if size as u64 > max_bytes => Err(FilesError::TooLarge { max_mb }),
            _ => Ok(()),
        }
    }

    /// Stores what `content` yields as a new file of `start.caller`. Over the limit, or when
    /// the stream fails (the client left), nothing is kept.
    pub async fn store<S>(&self, start: &pb::UploadStart, content: S) -> FilesResult<pb::File>
    where
        S: Stream<Item = FilesResult<Bytes>> + Send,
    {
        let caller = start.caller.clone().unwrap_or_default();
        let (filename, filetype) = described(start)?;
        self.check_declared(start.declared_size)?;
        let (max_bytes, max_mb) = self.max_bytes();
        let location = format!("objects/{}", uuid::Uuid::new_v4());
        let mut writer = self.store.writer(&location);
        let mut content = std::pin::pin!(content);
        while let Some(chunk) = content.next().await {
            let written = match chunk {
                Ok(data) if writer.written() + data.len() as u64 > max_bytes => {
                    Err(FilesError::TooLarge { max_mb })
                }
                Ok(data) => writer.write(&data).await,
                Err(error) => Err(error),
            };
            if let Err(error) = written {
                writer.abort().await;
                return Err(error);
            }
        }
        let size = writer.written();
        if start
            .declared_size
            .is_some_and(|declared| declared as u64 != size)
        {
            writer.abort().await;
            return Err(FilesError::InvalidArgument(format!(
                "{size} bytes arrived, {} were declared",
                start.declared_size.unwrap_or_default()
            )));
        }
        let sha256 = writer.finish().await?;
        let row = FileRow {
            id: 0,
            filename,
            filesize: size as i64,
            filetype,
            upload_time: gb_runtime::now_ms(),
            sha256,
            owner: caller.name.clone(),
            purpose: start.purpose.trim().to_owned(),
            display_name: start.display_name.trim().to_owned(),
            location: location.clone(),
        };
        match self.table.insert(&row).await {
            Ok(row) => {
                metrics::counter!("files_uploaded_bytes_total").increment(size);
                Ok(row.to_proto(Vec::new(), caller.admin))
            }
            Err(error) => {
                self.store.delete_quietly([location]).await;
                Err(error)
            }
        }
    }

    /// A file the caller may see, with its live upstream copies.
    pub async fn get(&self, caller: &pb::Caller, id: i64) -> FilesResult<(FileRow, pb::File)> {
        let who = self.visibility(caller);
        let row = self.table.visible(id, who).await?;
        let copies = self
            .table
            .copies(&[id], gb_runtime::now_ms())
            .await?
            .remove(&id)
            .unwrap_or_default();
        let file = row.to_proto(copies, caller.admin);
        Ok((row, file))
    }

    pub async fn list(
        &self,
        caller: &pb::Caller,
        request: &pb::ListFilesRequest,
    ) -> FilesResult<pb::ListFilesResponse> {
        let limit = match request.limit {
            0 => 100,
            limit => limit.min(1000),
        };
        let who = self.visibility(caller);
        let (rows, total) = self
            .table
            .list(
                who,
                crate::table::Page {
                    limit: i64::from(limit),
                    offset: i64::from(request.offset),
                    before_id: request.before_id,
                    purpose: (!request.purpose.is_empty()).then_some(request.purpose.as_str()),
                },
            )
            .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let mut copies = self.table.copies(&ids, gb_runtime::now_ms()).await?;
        Ok(pb::ListFilesResponse {
            files: rows
                .iter()
                .map(|row| row.to_proto(copies.remove(&row.id).unwrap_or_default(), caller.admin))
                .collect(),
            total: total.max(0) as u64,
        })
    }

    /// The content of a file the caller may see, or of `range` of it (`[start, end)`, cut at
    /// the size; a start past the end is INVALID_ARGUMENT).
    pub async fn read(
        &self,
        caller: &pb::Caller,
        id: i64,
        range: (Option<i64>, Option<i64>),
    ) -> FilesResult<(
        pb::DownloadHead,
        impl Stream<Item = FilesResult<Bytes>> + Send + use<>,
    )> {
        // The row only: a download has no use for the file's copies at Google.
        let who = self.visibility(caller);
        let row = self.table.visible(id, who).await?;
        let file = row.to_proto(Vec::new(), caller.admin);
        let size = row.filesize;
        let start = range.0.unwrap_or(0);
        let end = range.1.unwrap_or(size).min(size);
        if start < 0 || (start >= end && size > 0) || start > size {
            return Err(FilesError::InvalidArgument(format!(
                "the range {start}-{end} is outside the file's {size} bytes"
            )));
        }
        let whole = start == 0 && end == size;
        let stream = if size == 0 {
            futures::stream::empty().boxed()
        } else {
            self.store
                .read(&row.location, (!whole).then_some(start as u64..end as u64))
                .await?
                .boxed()
        };
        metrics::counter!("files_downloaded_bytes_total").increment((end - start).max(0) as u64);
        Ok((
            pb::DownloadHead {
                file: Some(file),
                range_start: start,
                range_end: end.max(start),
            },
            stream,
        ))
    }

    /// Removes a file the caller may see: the row, then the content. Answers the file with
    /// its upstream copies, which the caller deletes at Google.
    pub async fn delete(&self, caller: &pb::Caller, id: i64) -> FilesResult<pb::File> {
        let (row, file) = self.get(caller, id).await?;
        self.table.delete(id).await?;
        self.store.delete_quietly([row.location]).await;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(filename: &str, filetype: &str) -> pb::UploadStart {
        pb::UploadStart {
            filename: filename.into(),
            filetype: filetype.into(),
            ..pb::UploadStart::default()
        }
    }

    #[test]
    fn a_name_loses_its_path_and_a_type_is_guessed_when_none_is_given() {
        assert_eq!(
            described(&start("../../etc/report.PDF", "")).ok(),
            Some(("report.PDF".into(), "application/pdf".into()))
        );
        assert_eq!(
            described(&start("C:\\x\\a.bin", "application/octet-stream")).ok(),
            Some(("a.bin".into(), "application/octet-stream".into()))
        );
        assert_eq!(
            described(&start("", "text/plain")).ok(),
            Some(("file".into(), "text/plain".into()))
        );
        assert!(described(&start("a\0b", "")).is_err());
    }
}

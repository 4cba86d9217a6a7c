//! Where the files' content lives: an object store (`object_store`), a local directory by
//! default or an S3-compatible bucket (`FILES_STORE=s3://bucket/prefix`) that every replica
//! shares. Content is written through a buffered multipart writer and read as a stream of
//! chunks: a file never sits whole in memory.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use gb_proto::files::{FilesError, FilesResult};
use gb_runtime::settings::Settings;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// What a writer buffers before it sends a part (S3's parts are at least 5 MB).
const PART_BYTES: usize = 8 * 1024 * 1024;

fn storage(error: impl std::fmt::Display) -> FilesError {
    FilesError::Storage(error.to_string())
}

#[derive(Clone)]
pub struct ContentStore {
    store: Arc<dyn ObjectStore>,
    /// The directory of a local store: reads go to its files directly, in large pieces
    /// (`object_store`'s local reads come 8 KiB at a time, each on the blocking pool).
    local_root: Option<std::path::PathBuf>,
    /// Where it is, for logs (no credentials).
    pub describe: String,
}

/// `FILES_STORE` unset: `files` beside the SQLite file, else `data/files`.
fn default_directory(settings: &Settings) -> std::path::PathBuf {
    match &settings.shared.database {
        gb_runtime::settings::DatabaseLocation::Sqlite(path) => path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .map_or_else(|| "files".into(), |parent| parent.join("files")),
        gb_runtime::settings::DatabaseLocation::Postgres(_) => "data/files".into(),
    }
}

impl ContentStore {
    pub fn open(settings: &Settings) -> anyhow::Result<Self> {
        let configured = settings.files.files_store.as_deref();
        if let Some(location) = configured.and_then(|store| store.strip_prefix("s3://")) {
            let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            // A local S3-compatible server (MinIO, moto) speaks plain HTTP.
            if std::env::var("AWS_ENDPOINT_URL").is_ok_and(|url| url.starts_with("http://")) {
                builder = builder.with_allow_http(true);
            }
            let s3 = builder
                .build()
                .map_err(|error| anyhow::anyhow!("setting FILES_STORE: {error}"))?;
            let store: Arc<dyn ObjectStore> = if prefix.trim_matches('/').is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix.trim_matches('/')))
            };
            return Ok(ContentStore {
                store,
                local_root: None,
                describe: format!("s3://{location}"),
            });
        }
        let directory = configured.map_or_else(|| default_directory(settings), Into::into);
        std::fs::create_dir_all(&directory).map_err(|error| {
            anyhow::anyhow!(
                "setting FILES_STORE: cannot create {}: {error}",
                directory.display()
            )
        })?;
        let local = LocalFileSystem::new_with_prefix(&directory)
            .map_err(|error| anyhow::anyhow!("setting FILES_STORE: {error}"))?
            .with_automatic_cleanup(true);
        Ok(ContentStore {
            store: Arc::new(local),
            local_root: Some(std::fs::canonicalize(&directory)?),
            describe: directory.display().to_string(),
        })
    }

    /// A writer for a new object, counting and hashing what it is given.
    pub fn writer(&self, location: &str) -> ContentWriter {
        ContentWriter {
            // Two parts in flight at most: a file in transit holds about 3 parts of memory.
            inner: BufWriter::with_capacity(self.store.clone(), Path::from(location), PART_BYTES)
                .with_max_concurrency(2),
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The object's bytes in `range` (the whole object when `None`), as they arrive.
    pub async fn read(
        &self,
        location: &str,
        range: Option<Range<u64>>,
    ) -> FilesResult<impl Stream<Item = FilesResult<Bytes>> + Send + use<>> {
        if let Some(root) = &self.local_root {
            return Ok(read_local(root.join(location), range).await?.left_stream());
        }
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&Path::from(location), options)
            .await
            .map_err(storage)?;
        Ok(result.into_stream().map_err(storage).right_stream())
    }

    /// Removes an object; one already gone is not an error.
    pub async fn delete(&self, location: &str) -> FilesResult<()> {
        match self.store.delete(&Path::from(location)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(storage(error)),
        }
    }

    /// Removes objects, logging (not failing on) the ones that could not be.
    pub async fn delete_quietly(&self, locations: impl IntoIterator<Item = String>) {
        for location in locations {
            if let Err(error) = self.delete(&location).await {
                tracing::warn!(location, %error, "a stored object could not be deleted");
            }
        }
    }
}

/// A local object's bytes in `range`, read in pieces of up to 512 KiB.
async fn read_local(
    path: std::path::PathBuf,
    range: Option<Range<u64>>,
) -> FilesResult<impl Stream<Item = FilesResult<Bytes>> + Send + use<>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(&path).await.map_err(storage)?;
    let length = match range {
        Some(range) => {
            file.seek(std::io::SeekFrom::Start(range.start))
                .await
                .map_err(storage)?;
            range.end - range.start
        }
        None => file.metadata().await.map_err(storage)?.len(),
    };
    let reader = tokio_util::io::ReaderStream::with_capacity(file.take(length), 512 * 1024);
    Ok(reader.map_err(storage))
}

pub struct ContentWriter {
    inner: BufWriter,
    hasher: Sha256,
    written: u64,
}

impl ContentWriter {
    pub fn written(&self) -> u64 {
        self.written
    }

    pub async fn write(&mut self, data: &[u8]) -> FilesResult<()> {
        self.hasher.update(data);
        self.written += data.len() as u64;
        self.inner.write_all(data).await.map_err(storage)
    }

    /// Completes the object; answers its SHA-256 in hex.
    pub async fn finish(mut self) -> FilesResult<String> {
        self.inner.shutdown().await.map_err(storage)?;
        Ok(format!("{:x}", self.hasher.finalize()))
    }

    /// Drops what was written (a multipart upload is aborted, a local temporary file removed).
    pub async fn abort(mut self) {
        if let Err(error) = self.inner.abort().await {
            tracing::warn!(%error, "an unfinished upload could not be aborted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(directory: &std::path::Path) -> ContentStore {
        let local = LocalFileSystem::new_with_prefix(directory).unwrap();
        ContentStore {
            store: Arc::new(local),
            local_root: Some(directory.to_owned()),
            describe: String::new(),
        }
    }

    async fn collect(store: &ContentStore, range: Option<Range<u64>>) -> Vec<u8> {
        let stream = store.read("objects/a", range).await.unwrap();
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        chunks.concat()
    }

    #[tokio::test]
    async fn written_content_reads_back_whole_and_in_ranges_with_its_hash() {
        let directory = tempfile::tempdir().unwrap();
        let store = local(directory.path());
        let content: Vec<u8> = (0..3 * 1024 * 1024)
            .map(|index| (index % 251) as u8)
            .collect();
        let mut writer = store.writer("objects/a");
        for chunk in content.chunks(100_000) {
            assert!(writer.write(chunk).await.is_ok());
        }
        assert_eq!(writer.written(), content.len() as u64);
        let sha = writer.finish().await.unwrap();
        assert_eq!(sha, format!("{:x}", Sha256::digest(&content)));
        assert_eq!(collect(&store, None).await, content);
        assert_eq!(
            collect(&store, Some(10..20)).await,
            content[10..20].to_vec()
        );
        assert!(store.delete("objects/a").await.is_ok());
        assert!(
            store.delete("objects/a").await.is_ok(),
            "gone is not an error"
        );
        assert!(store.read("objects/a", None).await.is_err());
    }

    #[tokio::test]
    async fn an_aborted_writer_leaves_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let store = local(directory.path());
        let mut writer = store.writer("objects/a");
        assert!(writer.write(&[1; 1000]).await.is_ok());
        writer.abort().await;
        assert!(store.read("objects/a", None).await.is_err());
    }
}

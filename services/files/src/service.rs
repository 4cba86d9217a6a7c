//! The `FilesService` gRPC contract over [`Files`] and [`Sessions`]: client streams in,
//! server streams out, a message at a time.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use gb_proto::files::v1 as pb;
use gb_proto::files::v1::files_service_server::FilesService;
use gb_proto::files::{FilesError, FilesResult};
use tonic::{Request, Response, Status, Streaming};

use crate::files::Files;
use crate::sessions::Sessions;

/// The largest data message a download sends.
const DOWNLOAD_CHUNK: usize = 512 * 1024;

/// Pieces read from the store as data messages of at most `DOWNLOAD_CHUNK` (an error ends them).
fn messages_of(pieces: Vec<FilesResult<Bytes>>) -> Vec<Result<pb::DownloadResponse, Status>> {
    let data = |bytes: Bytes| {
        Ok(pb::DownloadResponse {
            part: Some(pb::download_response::Part::Data(bytes)),
        })
    };
    let mut messages = Vec::new();
    let mut joined = bytes::BytesMut::new();
    for piece in pieces {
        match piece {
            Ok(bytes) => {
                if joined.len() + bytes.len() > DOWNLOAD_CHUNK && !joined.is_empty() {
                    messages.push(data(joined.split().freeze()));
                }
                if bytes.len() >= DOWNLOAD_CHUNK {
                    messages.push(data(bytes));
                } else {
                    joined.extend_from_slice(&bytes);
                }
            }
            Err(error) => {
                if !joined.is_empty() {
                    messages.push(data(joined.split().freeze()));
                }
                messages.push(Err(Status::from(error)));
                return messages;
            }
        }
    }
    if !joined.is_empty() {
        messages.push(data(joined.freeze()));
    }
    messages
}

pub struct FilesGrpc {
    pub files: Arc<Files>,
    pub sessions: Arc<Sessions>,
}

fn caller(caller: Option<pb::Caller>) -> FilesResult<pb::Caller> {
    caller
        .filter(|caller| caller.admin || !caller.name.is_empty())
        .ok_or_else(|| FilesError::InvalidArgument("the caller is missing".into()))
}

/// What one message after the first of a client stream is.
enum Piece {
    Data(Bytes),
    End,
}

/// The data messages that follow the first one of a client stream, as bytes, up to the `end`
/// mark; a stream that stops without it (the client left) ends in an error, so that nothing
/// of it is kept, and any other message is the caller's error.
fn data_of<M, F>(messages: Streaming<M>, piece: F) -> impl Stream<Item = FilesResult<Bytes>> + Send
where
    M: Send + 'static,
    F: Fn(M) -> Option<Piece> + Send + 'static,
{
    futures::stream::unfold(Some((messages, piece)), |state| async move {
        let (mut messages, piece) = state?;
        match messages.message().await {
            Ok(Some(message)) => match piece(message) {
                Some(Piece::Data(data)) => Some((Ok(data), Some((messages, piece)))),
                Some(Piece::End) => None,
                None => Some((
                    Err(FilesError::InvalidArgument(
                        "only data and the end may follow the first message".into(),
                    )),
                    None,
                )),
            },
            Ok(None) => Some((
                Err(FilesError::InvalidArgument(
                    "the upload stopped before its end".into(),
                )),
                None,
            )),
            Err(status) => Some((
                Err(FilesError::InvalidArgument(format!(
                    "the upload stream broke: {}",
                    status.message()
                ))),
                None,
            )),
        }
    })
}

type DownloadStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadResponse, Status>> + Send>>;

#[tonic::async_trait]
impl FilesService for FilesGrpc {
    async fn upload(
        &self,
        request: Request<Streaming<pb::UploadRequest>>,
    ) -> Result<Response<pb::File>, Status> {
        let mut messages = request.into_inner();
        let Some(pb::upload_request::Part::Start(start)) =
            messages.message().await?.and_then(|m| m.part)
        else {
            return Err(
                FilesError::InvalidArgument("the first message must be the start".into()).into(),
            );
        };
        caller(start.caller.clone())?;
        let content = data_of(messages, |message: pb::UploadRequest| match message.part {
            Some(pb::upload_request::Part::Data(data)) => Some(Piece::Data(data)),
            Some(pb::upload_request::Part::End(_)) => Some(Piece::End),
            _ => None,
        });
        Ok(Response::new(self.files.store(&start, content).await?))
    }

    type DownloadStream = DownloadStream;

    async fn download(
        &self,
        request: Request<pb::DownloadRequest>,
    ) -> Result<Response<DownloadStream>, Status> {
        let request = request.into_inner();
        let who = caller(request.caller)?;
        let (head, content) = self
            .files
            .read(&who, request.id, (request.range_start, request.range_end))
            .await?;
        let head = futures::stream::once(async move {
            Ok(pb::DownloadResponse {
                part: Some(pb::download_response::Part::Head(head)),
            })
        });
        // A store reads in small pieces (8 KiB from a local file): the pieces already read
        // travel together, as messages of up to `DOWNLOAD_CHUNK`.
        let data = content
            .ready_chunks(DOWNLOAD_CHUNK / (8 * 1024))
            .flat_map(|pieces| futures::stream::iter(messages_of(pieces)));
        Ok(Response::new(Box::pin(head.chain(data))))
    }

    async fn get_file(
        &self,
        request: Request<pb::GetFileRequest>,
    ) -> Result<Response<pb::File>, Status> {
        let request = request.into_inner();
        let who = caller(request.caller)?;
        Ok(Response::new(self.files.get(&who, request.id).await?.1))
    }

    async fn list_files(
        &self,
        request: Request<pb::ListFilesRequest>,
    ) -> Result<Response<pb::ListFilesResponse>, Status> {
        let request = request.into_inner();
        let who = caller(request.caller.clone())?;
        Ok(Response::new(self.files.list(&who, &request).await?))
    }

    async fn delete_file(
        &self,
        request: Request<pb::DeleteFileRequest>,
    ) -> Result<Response<pb::DeleteFileResponse>, Status> {
        let request = request.into_inner();
        let who = caller(request.caller)?;
        let file = self.files.delete(&who, request.id).await?;
        Ok(Response::new(pb::DeleteFileResponse { file: Some(file) }))
    }

    async fn start_upload_session(
        &self,
        request: Request<pb::StartUploadSessionRequest>,
    ) -> Result<Response<pb::UploadSession>, Status> {
        let start = request
            .into_inner()
            .start
            .ok_or_else(|| FilesError::InvalidArgument("the start is missing".into()))?;
        caller(start.caller.clone())?;
        Ok(Response::new(
            self.sessions.start(&self.files, start).await?,
        ))
    }

    async fn append_upload_session(
        &self,
        request: Request<Streaming<pb::AppendUploadSessionRequest>>,
    ) -> Result<Response<pb::UploadSession>, Status> {
        let mut messages = request.into_inner();
        let Some(pb::append_upload_session_request::Part::Chunk(chunk)) =
            messages.message().await?.and_then(|m| m.part)
        else {
            return Err(
                FilesError::InvalidArgument("the first message must be the chunk".into()).into(),
            );
        };
        caller(chunk.caller.clone())?;
        let data = data_of(
            messages,
            |message: pb::AppendUploadSessionRequest| match message.part {
                Some(pb::append_upload_session_request::Part::Data(data)) => {
                    Some(Piece::Data(data))
                }
                Some(pb::append_upload_session_request::Part::End(_)) => Some(Piece::End),
                _ => None,
            },
        );
        Ok(Response::new(
            self.sessions.append(&self.files, chunk, data).await?,
        ))
    }

    async fn get_upload_session(
        &self,
        request: Request<pb::GetUploadSessionRequest>,
    ) -> Result<Response<pb::UploadSession>, Status> {
        let request = request.into_inner();
        let who = caller(request.caller)?;
        Ok(Response::new(
            self.sessions
                .get(&self.files, &who, &request.session_id)
                .await?,
        ))
    }

    async fn cancel_upload_session(
        &self,
        request: Request<pb::GetUploadSessionRequest>,
    ) -> Result<Response<pb::UploadSession>, Status> {
        let request = request.into_inner();
        let who = caller(request.caller)?;
        Ok(Response::new(
            self.sessions
                .cancel(&self.files, &who, &request.session_id)
                .await?,
        ))
    }

    async fn record_upstream_copy(
        &self,
        request: Request<pb::RecordUpstreamCopyRequest>,
    ) -> Result<Response<pb::File>, Status> {
        let request = request.into_inner();
        let copy = request
            .copy
            .ok_or_else(|| FilesError::InvalidArgument("the copy is missing".into()))?;
        self.files.table.record_copy(request.file_id, &copy).await?;
        let admin = pb::Caller {
            name: String::new(),
            admin: true,
        };
        Ok(Response::new(
            self.files.get(&admin, request.file_id).await?.1,
        ))
    }

    async fn forget_upstream_copy(
        &self,
        request: Request<pb::ForgetUpstreamCopyRequest>,
    ) -> Result<Response<pb::ForgetUpstreamCopyResponse>, Status> {
        let request = request.into_inner();
        self.files
            .table
            .forget_copy(request.file_id, request.key_id)
            .await?;
        Ok(Response::new(pb::ForgetUpstreamCopyResponse {}))
    }
}

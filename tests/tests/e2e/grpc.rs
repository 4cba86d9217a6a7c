//! The services over real gRPC (microservice mode): health, reflection (v1 and v1alpha), the
//! admin token on the keys service, and the chat and files contracts called directly.

use gb_proto::chat::v1 as chat;
use gb_proto::keys::v1 as keys;
use tonic::transport::Endpoint;

use crate::harness::{ADMIN_TOKEN, Backend, Mode, TestApp};

async fn channel(addr: std::net::SocketAddr) -> tonic::transport::Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_on_every_service() {
    let app = TestApp::builder(Mode::Microservices, Backend::Sqlite)
        .spawn()
        .await;
    for (addr, service) in [
        (app.keys_addr.unwrap(), "gemini_balance.keys.v1.KeysService"),
        (app.chat_addr.unwrap(), "gemini_balance.chat.v1.ChatService"),
        (
            app.config_addr.unwrap(),
            "gemini_balance.config.v1.ConfigService",
        ),
        (
            app.logging_addr.unwrap(),
            "gemini_balance.logging.v1.LoggingService",
        ),
        (
            app.files_addr.unwrap(),
            "gemini_balance.files.v1.FilesService",
        ),
    ] {
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel(addr).await);
        for name in ["", service] {
            let answer = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: name.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                answer.status,
                tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
                "{name}"
            );
        }
        // v1 reflection (buf curl, grpcurl ≥ 1.9)
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut reflection = ServerReflectionClient::new(channel(addr).await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = reflection
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            answers.message().await.unwrap().unwrap().message_response
        else {
            panic!("no service list");
        };
        let names: Vec<String> = list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect();
        assert!(names.contains(&service.to_owned()), "{names:?}");
        // v1alpha reflection (older grpcurl)
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest as AlphaRequest,
            server_reflection_client::ServerReflectionClient as AlphaClient,
            server_reflection_request::MessageRequest as AlphaMessage,
        };
        let mut alpha = AlphaClient::new(channel(addr).await);
        let request = AlphaRequest {
            host: String::new(),
            message_request: Some(AlphaMessage::FileContainingSymbol(service.into())),
        };
        let mut answers = alpha
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .unwrap()
            .into_inner();
        assert!(
            answers
                .message()
                .await
                .unwrap()
                .unwrap()
                .message_response
                .is_some()
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_service_needs_the_admin_token() {
    let app = TestApp::builder(Mode::Microservices, Backend::Sqlite)
        .spawn()
        .await;
    let mut anonymous =
        keys::keys_service_client::KeysServiceClient::new(channel(app.keys_addr.unwrap()).await);
    let refused = anonymous
        .list_keys(keys::ListKeysRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let refused = anonymous
        .watch_pool(keys::WatchPoolRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut request = tonic::Request::new(keys::ListKeysRequest::default());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    let listed = anonymous.list_keys(request).await.unwrap().into_inner();
    assert_eq!(listed.keys.len(), 2);
    assert!(listed.keys.iter().all(|key| key.masked_value.contains('…')));
    // The usage per key and model: closed without the token, masked with it.
    let refused = anonymous
        .get_usage(keys::GetUsageRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(app.generate("count me").await.0, 200);
    app.eventually("the attempt is in the usage sums", || async {
        let usage = anonymous
            .clone()
            .get_usage(with_admin_token(keys::GetUsageRequest {}))
            .await
            .unwrap()
            .into_inner()
            .usage;
        usage.iter().any(|row| {
            row.requests_last_minute == 1
                && row.masked_value.contains('…')
                && row.rpm.is_none()
                && !app.keys.contains(&row.masked_value)
        })
    })
    .await;
    app.stop().await;
}

fn with_admin_token<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    request
}

/// The config and logging contracts, called directly: the admin token, a validated change
/// (a bad one is INVALID_ARGUMENT and names the setting), secrets masked, the watch stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_and_logging_contracts_called_directly() {
    use gb_proto::config::v1 as config;
    use gb_proto::logging::v1 as logging;
    let app = TestApp::builder(Mode::Microservices, Backend::Sqlite)
        .spawn()
        .await;
    let mut settings = config::config_service_client::ConfigServiceClient::new(
        channel(app.config_addr.unwrap()).await,
    );
    let refused = settings
        .list_configs(config::ListConfigsRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let bad = settings
        .put_configs(with_admin_token(config::PutConfigsRequest {
            values_json: [("MAX_RETRIES".to_owned(), "\"many\"".to_owned())].into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("MAX_RETRIES"), "{}", bad.message());
    let mut watch = settings
        .watch_configs(with_admin_token(config::WatchConfigsRequest {}))
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    let listed = settings
        .put_configs(with_admin_token(config::PutConfigsRequest {
            values_json: [("MAX_RETRIES".to_owned(), "7".to_owned())].into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let api_keys = listed
        .entries
        .iter()
        .find(|entry| entry.name == "API_KEYS")
        .unwrap();
    assert!(api_keys.secret && !api_keys.value_json.contains(&app.keys[0]));
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(next.version, first.version + 1);
    assert_eq!(next.values["MAX_RETRIES"], "7");

    let mut logs = logging::logging_service_client::LoggingServiceClient::new(
        channel(app.logging_addr.unwrap()).await,
    );
    let refused = logs
        .call_counts(logging::CallCountsRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let missing = logs
        .get_error_log(with_admin_token(logging::GetErrorLogRequest { id: 999 }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_contract_called_directly() {
    let app = TestApp::builder(Mode::Microservices, Backend::Sqlite)
        .spawn()
        .await;
    let mut client =
        chat::chat_service_client::ChatServiceClient::new(channel(app.chat_addr.unwrap()).await);
    let hi = || chat::ChatRequest {
        context: None,
        message: "hi there".into(),
        model: None,
    };
    // Whoever reaches the port without the admin token spends nothing.
    let refused = client.chat(hi()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut wrong = tonic::Request::new(hi());
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer not-the-token".parse().unwrap());
    let refused = client.chat(wrong).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(app.mock.calls().is_empty());
    let answer = client
        .chat(with_admin_token(hi()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.response, "Echo: hi there");
    assert_eq!(answer.model, "gemini-2.5-flash");
    let body = crate::harness::hello("native").to_string();
    let answer = client
        .generate_content(with_admin_token(chat::GeminiRequest {
            context: None,
            model: "gemini-2.5-flash".into(),
            body: body.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let parsed: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        parsed["candidates"][0]["content"]["parts"][0]["text"],
        "Echo: native"
    );
    let failed = client
        .generate_content(with_admin_token(chat::GeminiRequest {
            context: None,
            model: "gemini-2.5-flash".into(),
            body: "{\"contents\":[]}".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), tonic::Code::InvalidArgument);
    use prost::Message;
    let upstream = chat::UpstreamError::decode(failed.details()).unwrap();
    assert_eq!(upstream.http_status, 400);
    app.stop().await;
}

/// A message with the admin token, as split services send it to each other.
fn authorized<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    request
}

/// The files contract over gRPC: the admin token required; an upload is a stream that must
/// end with its mark (one that stops without it keeps nothing); a download streams a range;
/// another client's file is NOT_FOUND; a chunk at the wrong offset FAILED_PRECONDITION.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_contract_called_directly() {
    use files::files_service_client::FilesServiceClient;
    use gb_proto::files::v1 as files;
    let app = TestApp::builder(Mode::Microservices, Backend::Sqlite)
        .spawn()
        .await;
    let mut client = FilesServiceClient::new(channel(app.files_addr.unwrap()).await);
    let owner = files::Caller {
        name: "token-owner".into(),
        admin: false,
    };
    let start = |declared: Option<i64>| files::UploadRequest {
        part: Some(files::upload_request::Part::Start(files::UploadStart {
            caller: Some(owner.clone()),
            filename: "grpc.txt".into(),
            filetype: "text/plain".into(),
            declared_size: declared,
            ..Default::default()
        })),
    };
    let data = |bytes: &'static [u8]| files::UploadRequest {
        part: Some(files::upload_request::Part::Data(
            bytes::Bytes::from_static(bytes),
        )),
    };
    let end = files::UploadRequest {
        part: Some(files::upload_request::Part::End(files::End {})),
    };
    let denied = client
        .list_files(files::ListFilesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);

    let stream = tokio_stream::iter(vec![
        start(Some(11)),
        data(b"hello "),
        data(b"world"),
        end.clone(),
    ]);
    let file = client
        .upload(authorized(stream))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((file.filesize, file.filename.as_str()), (11, "grpc.txt"));

    // Without its end mark (a client that left), nothing is kept.
    let broken = tokio_stream::iter(vec![start(None), data(b"half")]);
    let refused = client.upload(authorized(broken)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let listed = client
        .list_files(authorized(files::ListFilesRequest {
            caller: Some(owner.clone()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total, 1);

    let mut download = client
        .download(authorized(files::DownloadRequest {
            caller: Some(owner.clone()),
            id: file.id,
            range_start: Some(6),
            range_end: Some(11),
        }))
        .await
        .unwrap()
        .into_inner();
    let mut received = Vec::new();
    while let Some(message) = download.message().await.unwrap() {
        if let Some(files::download_response::Part::Data(data)) = message.part {
            received.extend_from_slice(&data);
        }
    }
    assert_eq!(received, b"world");

    let stranger = files::Caller {
        name: "token-stranger".into(),
        admin: false,
    };
    let hidden = client
        .get_file(authorized(files::GetFileRequest {
            caller: Some(stranger),
            id: file.id,
        }))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), tonic::Code::NotFound);

    let session = client
        .start_upload_session(authorized(files::StartUploadSessionRequest {
            start: match start(Some(4)).part {
                Some(files::upload_request::Part::Start(start)) => Some(start),
                _ => None,
            },
        }))
        .await
        .unwrap()
        .into_inner();
    let chunk = files::AppendUploadSessionRequest {
        part: Some(files::append_upload_session_request::Part::Chunk(
            files::SessionChunk {
                caller: Some(owner.clone()),
                session_id: session.id.clone(),
                offset: 2,
                finalize: false,
            },
        )),
    };
    let end_mark = files::AppendUploadSessionRequest {
        part: Some(files::append_upload_session_request::Part::End(
            files::End {},
        )),
    };
    let wrong = client
        .append_upload_session(authorized(tokio_stream::iter(vec![chunk, end_mark])))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::FailedPrecondition, "{wrong:?}");
    app.stop().await;
}

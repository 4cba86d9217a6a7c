//! One trace per request, exported over OTLP to a receiver this test starts (the
//! `opentelemetry-proto` trace service): the gateway's HTTP span, the chat or keys service's
//! gRPC span (its parent carried in gRPC metadata), and the upstream call's span, chained, in
//! both run modes. A test binary of its own: it installs the process-wide telemetry.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "e2e/harness.rs"]
#[expect(dead_code, reason = "the tracing test uses part of the shared harness")]
mod harness;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gb_runtime::settings::Settings;
use harness::{Backend, Mode, TestApp};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
    service_names: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            for attribute in resource_spans
                .resource
                .iter()
                .flat_map(|resource| resource.attributes.iter())
            {
                if attribute.key == "service.name"
                    && let Some(AnyValue::StringValue(name)) = attribute
                        .value
                        .as_ref()
                        .and_then(|value| value.value.clone())
                {
                    self.service_names.lock().unwrap().push(name);
                }
            }
            for scope in resource_spans.scope_spans {
                self.spans.lock().unwrap().extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(
            |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(text) => Some(text.clone()),
                AnyValue::IntValue(number) => Some(number.to_string()),
                AnyValue::BoolValue(flag) => Some(flag.to_string()),
                other => Some(format!("{other:?}")),
            },
        )
}

fn parent_of<'a>(spans: &'a [Span], span: &Span) -> Option<&'a Span> {
    spans.iter().find(|candidate| {
        candidate.trace_id == span.trace_id && candidate.span_id == span.parent_span_id
    })
}

/// Checks the chain `http.request` → `grpc.server` (service, method) → leaf span `leaf`.
fn assert_chain(spans: &[Span], leaf_name: &str, rpc_service: &str, rpc_method: &str) {
    let leaves: Vec<&Span> = spans.iter().filter(|span| span.name == leaf_name).collect();
    assert!(
        !leaves.is_empty(),
        "no {leaf_name} span among {:?}",
        spans.iter().map(|span| &span.name).collect::<Vec<_>>()
    );
    let chained = leaves.iter().any(|leaf| {
        let Some(server) = parent_of(spans, leaf) else {
            return false;
        };
        let Some(http) = parent_of(spans, server) else {
            return false;
        };
        attribute(server, "rpc.system").as_deref() == Some("grpc")
            && attribute(server, "rpc.service").as_deref() == Some(rpc_service)
            && attribute(server, "rpc.method").as_deref() == Some(rpc_method)
            && http.name.starts_with("POST ")
            && attribute(http, "http.request.method").as_deref() == Some("POST")
            && http.parent_span_id.is_empty()
    });
    assert!(
        chained,
        "no {leaf_name} span under {rpc_service}/{rpc_method} under an HTTP root span"
    );
}

async fn run_requests(mode: Mode) {
    let app = TestApp::builder(mode, Backend::Sqlite).spawn().await;
    assert_eq!(app.generate("traced").await.0, 200);
    let (status, _) = app
        .admin_post(
            &format!("/gemini/v1beta/verify-key/{}", app.keys[0]),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_http_to_upstream_in_both_modes() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = TraceServiceServer::new(receiver.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    // SAFETY: set before any other thread of this test binary reads the environment.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{address}"));
        std::env::set_var("OTEL_SERVICE_NAME", "gemini-balance-under-test");
    }
    let settings = Settings::from_lookup(&|_| None).unwrap();
    let telemetry = gb_runtime::telemetry::init(&settings, "gemini-balance").unwrap();

    run_requests(Mode::AllInOne).await;
    run_requests(Mode::Microservices).await;
    drop(telemetry); // flushes the batch exporter

    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = receiver.spans.lock().unwrap().clone();
        if spans.iter().filter(|span| span.name == "key.check").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        receiver
            .service_names
            .lock()
            .unwrap()
            .iter()
            .all(|name| name == "gemini-balance-under-test"),
        "OTEL_SERVICE_NAME honoured"
    );
    assert_chain(
        &spans,
        "upstream.attempt",
        "gemini_balance.chat.v1.ChatService",
        "GenerateContent",
    );
    assert_chain(
        &spans,
        "key.check",
        "gemini_balance.keys.v1.KeysService",
        "VerifyKeys",
    );
    for mode_trace in spans.iter().filter(|span| span.name == "upstream.attempt") {
        assert_eq!(attribute(mode_trace, "attempt").as_deref(), Some("1"));
        assert_eq!(attribute(mode_trace, "outcome").as_deref(), Some("success"));
        assert_eq!(
            attribute(mode_trace, "gen_ai.request.model").as_deref(),
            Some("gemini-2.5-flash")
        );
        assert_eq!(
            attribute(mode_trace, "server.address").as_deref(),
            Some("127.0.0.1")
        );
        assert!(attribute(mode_trace, "key.masked").unwrap().contains('…'));
    }
    // Both modes produced the chain: two upstream spans, each in a trace of its own HTTP root.
    let traces: std::collections::HashSet<&Vec<u8>> = spans
        .iter()
        .filter(|span| span.name == "upstream.attempt")
        .map(|span| &span.trace_id)
        .collect();
    assert_eq!(traces.len(), 2);
    // No key value in any span attribute.
    for span in &spans {
        for attribute in &span.attributes {
            let text = format!("{:?}", attribute.value);
            assert!(
                !text.contains("AIzaSy") || text.contains('…'),
                "a key in span {}: {text}",
                span.name
            );
        }
    }
}

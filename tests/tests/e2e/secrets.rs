//! Secrets: key values encrypted at rest, the generated encryption key file, and no key value
//! in any log line or error body.

use gb_tests::mock_gemini::Behavior;

use crate::harness::{Backend, Mode, TestApp, captured_logs};
use crate::two_setups;

async fn keys_are_encrypted_at_rest(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let stored = app.db.raw_key_values().await;
    assert_eq!(stored.len(), 2);
    for value in &stored {
        assert!(!value.contains("AIza"), "stored in clear: {value}");
        for key in &app.keys {
            assert!(!value.contains(key.as_str()));
        }
    }
    app.stop().await;
}
two_setups!(encrypted_at_rest, keys_are_encrypted_at_rest);

/// Without ENCRYPTION_KEY on SQLite, a key is generated beside the database, mode 0600, and
/// reused on the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_key_is_generated_beside_sqlite() {
    let mut app = TestApp::builder(Mode::AllInOne, Backend::Sqlite)
        .spawn()
        .await;
    let path = std::path::PathBuf::from(app.db.url.trim_start_matches("sqlite://"))
        .with_file_name("encryption.key");
    let first = std::fs::read_to_string(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    app.restart().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    assert_eq!(app.generate("still readable").await.0, 200);
    app.stop().await;
}

/// Whatever happens (dead, suspended, rate-limited, failing keys; verify; streams cut), no log
/// line and no error body carries a key value. The mock's 403 names the key, as Google's does.
async fn no_key_value_leaks(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("MAX_RETRIES", "2")
        .spawn()
        .await;
    app.mock.set_behavior(&app.keys[0], Behavior::Suspended);
    app.mock.set_behavior(&app.keys[1], Behavior::Suspended);
    let (status, body) = app.generate("hello").await;
    assert_eq!(status, 403);
    let text = body.to_string();
    assert!(
        text.contains("api_key:AIzaSy…"),
        "the key in Google's message is masked: {text}"
    );
    for key in &app.keys {
        assert!(!text.contains(key.as_str()));
    }
    app.admin_post(
        &format!("/gemini/v1beta/verify-key/{}", app.keys[0]),
        &serde_json::json!({}),
    )
    .await;
    let (_, listed) = app.admin_get("/keys").await;
    for key in &app.keys {
        assert!(
            !listed.to_string().contains(key.as_str()),
            "last_error is masked too"
        );
    }
    app.stop().await;

    let app = TestApp::builder(mode, backend).spawn().await;
    app.mock.set_behavior(
        &app.keys[0],
        Behavior::Quota {
            retry_delay_seconds: None,
        },
    );
    app.mock
        .set_behavior(&app.keys[1], Behavior::CutStreamAfter { chunks: 1 });
    app.stream_sse("a b c d e f").await;
    app.mock.set_behavior(&app.keys[1], Behavior::InvalidKey);
    app.generate("x").await;
    app.stop().await;

    let logs = captured_logs();
    assert!(
        logs.contains("upstream attempt failed"),
        "the failures were logged"
    );
    // Any Google-format key value (AIzaSy + 33 characters) anywhere in the logs is a leak.
    let mut rest = logs.as_str();
    while let Some(at) = rest.find("AIzaSy") {
        let candidate: String = rest[at + 6..].chars().take(33).collect();
        let looks_like_a_key = candidate.chars().count() == 33
            && candidate.chars().all(|character| {
                character.is_ascii_alphanumeric() || matches!(character, '-' | '_')
            });
        if looks_like_a_key {
            let line = logs
                .lines()
                .find(|line| line.contains(&format!("AIzaSy{candidate}")))
                .unwrap_or_default();
            panic!("a key value in the logs: {line}");
        }
        rest = &rest[at + 6..];
    }
}
two_setups!(no_leaks, no_key_value_leaks);

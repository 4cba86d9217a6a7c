//! The binary's command line and start-up checks: a bad setting stops the start with a
//! message naming it; `.env` is read and the environment wins over it.

use std::process::Command;

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gemini-balance"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn a_bad_setting_is_named_and_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = binary()
        .current_dir(dir.path())
        .env("MAX_RETRIES", "three")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("setting MAX_RETRIES"), "{stderr}");
}

#[test]
fn dotenv_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "TIME_OUT=soon\nMAX_FAILURES=many\n",
    )
    .unwrap();
    let output = binary().current_dir(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("setting MAX_FAILURES") || stderr.contains("setting TIME_OUT"),
        "{stderr}"
    );
    let output = binary()
        .current_dir(dir.path())
        .env("TIME_OUT", "30")
        .env("MAX_FAILURES", "3")
        .env("GATEWAY_ADDR", "nowhere")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("setting GATEWAY_ADDR"),
        "the environment overrides .env: {stderr}"
    );
}

#[test]
fn split_services_need_the_admin_token_and_say_so_before_opening_a_port() {
    let dir = tempfile::tempdir().unwrap();
    // Both ports taken: the settings are checked before either is opened.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = binary()
        .current_dir(dir.path())
        .arg("gateway")
        .env("GATEWAY_ADDR", &address)
        .env("METRICS_ADDR", &address)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("setting AUTH_TOKEN"), "{stderr}");
}

#[test]
fn help_names_the_services() {
    let output = binary().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for service in ["gateway", "chat", "keys"] {
        assert!(help.contains(service), "{help}");
    }
}

#[test]
fn a_gemini_balance_dotenv_file_works_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# as gemini-balance's .env.example writes them\nAPI_KEYS=[\"AIzaSyFirst\",\"AIzaSySecond\"]\nALLOWED_TOKENS=[\"sk-1\",\"sk-2\",\"sk-3\"]\nAUTH_TOKEN=sk-admin\nTHINKING_BUDGET_MAP={\"gemini-2.5-flash\": 1000}\nSAFETY_SETTINGS=[{\"category\": \"HARM_CATEGORY_HARASSMENT\", \"threshold\": \"OFF\"}]\n",
    )
    .unwrap();
    let output = binary()
        .current_dir(dir.path())
        .arg("show-settings")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let settings: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(settings["API_KEYS"], serde_json::json!(["…st", "…nd"]));
    assert_eq!(settings["ALLOWED_TOKENS"].as_array().map(Vec::len), Some(3));
    assert_eq!(settings["AUTH_TOKEN"], "…in");
    assert_eq!(settings["THINKING_BUDGET_MAP"]["gemini-2.5-flash"], 1000);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        !printed.contains("sk-admin") && !printed.contains("AIzaSyFirst"),
        "{printed}"
    );
}

#[test]
fn an_admin_token_that_cannot_travel_in_a_header_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = binary()
        .current_dir(dir.path())
        .arg("gateway")
        .env("AUTH_TOKEN", "sk-admin\u{1b}[0m")
        .env("GATEWAY_ADDR", "127.0.0.1:0")
        .env("METRICS_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("setting AUTH_TOKEN"), "{stderr}");
    assert!(
        !stderr.contains("sk-admin"),
        "the token is never echoed: {stderr}"
    );
}

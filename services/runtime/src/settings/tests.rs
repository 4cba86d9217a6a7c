use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    Settings::from_lookup(&|name| map.get(name).cloned())
}

#[test]
fn dotenv_keeps_json_values() {
    let values = parse_dotenv(
        "# keys\nAPI_KEYS=[\"AIzaSyA\",\"AIzaSyB\"]\nexport AUTH_TOKEN=\"admin\"\nSAFETY_SETTINGS=[{\"category\":\"X\",\"threshold\":\"OFF\"}]\nLOG_LEVEL=info # comment\nQUOTED='a # b'\n",
    );
    assert_eq!(values["API_KEYS"], "[\"AIzaSyA\",\"AIzaSyB\"]");
    assert_eq!(values["AUTH_TOKEN"], "admin");
    assert_eq!(
        values["SAFETY_SETTINGS"],
        "[{\"category\":\"X\",\"threshold\":\"OFF\"}]"
    );
    assert_eq!(values["LOG_LEVEL"], "info");
    assert_eq!(values["QUOTED"], "a # b");
    assert_eq!(
        parse_list(&values["API_KEYS"]),
        Ok(vec!["AIzaSyA".into(), "AIzaSyB".into()])
    );
}

#[test]
fn lists_accept_json_and_commas() {
    assert_eq!(
        parse_list(r#"["a", "b","a"]"#),
        Ok(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        parse_list(" a, b ,,c"),
        Ok(vec!["a".into(), "b".into(), "c".into()])
    );
    assert!(parse_list(r#"["a", 1]"#).is_err());
}

#[test]
fn defaults_are_gemini_balance_defaults() -> Result<(), SettingError> {
    let settings = settings(&[])?;
    assert_eq!(settings.upstream.base_url, DEFAULT_BASE_URL);
    assert_eq!(settings.keys.max_failures, 3);
    assert_eq!(settings.chat.max_retries, 3);
    assert_eq!(settings.upstream.time_out.0, Duration::from_secs(300));
    assert_eq!(
        settings.keys.check_interval.0,
        Some(Duration::from_secs(3600))
    );
    assert_eq!(settings.shared.gateway_addr.port(), 8000);
    assert_eq!(settings.shared.chat_url(), "http://127.0.0.1:50051");
    assert_eq!(settings.chat.filtered_models.len(), 5);
    assert_eq!(
        settings.shared.database,
        DatabaseLocation::Sqlite(PathBuf::from("data/gemini-balance.db"))
    );
    Ok(())
}

#[test]
fn a_url_left_unset_follows_its_address() -> Result<(), SettingError> {
    let settings = settings(&[("KEYS_ADDR", "0.0.0.0:6000"), ("CHAT_URL", "http://chat:1")])?;
    assert_eq!(settings.shared.keys_url(), "http://127.0.0.1:6000");
    assert_eq!(settings.shared.chat_url(), "http://chat:1");
    Ok(())
}

#[test]
fn a_bad_setting_is_named() {
    for (name, value) in [
        ("MAX_RETRIES", "three"),
        ("MAX_FAILURES", "0"),
        ("TIME_OUT", "-1"),
        ("TIME_OUT", "0"),
        ("TIME_OUT", "1e300"),
        ("CHECK_INTERVAL_HOURS", "NaN"),
        ("DRAIN_TIMEOUT", "1e300"),
        ("FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS", "0"),
        ("BASE_URL", "not a url"),
        ("PROXIES", "ftp://x"),
        ("PROXIES", "http://user:hunter2@[bad"),
        ("API_KEYS", "[1,2]"),
        ("GATEWAY_ADDR", "8000"),
        ("DATABASE_URL", "mysql://x"),
        ("THINKING_BUDGET_MAP", "{\"a\": \"lots\"}"),
        ("SAFETY_SETTINGS", "[{\"category\": 1}]"),
        ("SHOW_THINKING_PROCESS", "maybe"),
        ("CUSTOM_HEADERS", "{\"bad header\": \"x\"}"),
        ("LOG_LEVEL", "very=loud=please"),
        ("LOG_FORMAT", "xml"),
        ("AUTO_DELETE_ERROR_LOGS_DAYS", "0"),
        ("AUTH_TOKEN", "admin\u{7f}token"),
        ("PROXIES", r#"["http://[bad"]"#),
        ("PROXIES", r#"["socks5://[::1"]"#),
        ("PROXIES", r#"["http://h:99999"]"#),
        ("PROXIES", r#"["https://"]"#),
        ("TIME_OUT", "1e9"),
        ("CHECK_INTERVAL_HOURS", "1e9"),
        ("FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS", "1e300"),
        ("DRAIN_TIMEOUT", "1e9"),
    ] {
        let Err(error) = settings(&[(name, value)]) else {
            panic!("{name}={value} was accepted");
        };
        assert_eq!(error.name, name, "{name}={value}");
        assert!(error.to_string().starts_with(&format!("setting {name}:")));
    }
}

#[test]
fn zero_check_interval_turns_checks_off() -> Result<(), SettingError> {
    assert_eq!(
        settings(&[("CHECK_INTERVAL_HOURS", "0")])?
            .keys
            .check_interval
            .0,
        None
    );
    Ok(())
}

#[test]
fn every_declared_setting_has_a_value_and_a_description() -> Result<(), SettingError> {
    let settings = settings(&[])?;
    let mut names = std::collections::HashSet::new();
    for declaration in DECLARATIONS {
        assert!(
            names.insert(declaration.name),
            "{} declared twice",
            declaration.name
        );
        assert!(
            !settings.config_value(declaration.name).is_null(),
            "{} has no value",
            declaration.name
        );
        assert!(
            !declaration.description.trim().is_empty(),
            "{}",
            declaration.name
        );
    }
    Ok(())
}

#[test]
fn secrets_never_print() -> Result<(), SettingError> {
    let marker = "AIzaSySecretMarker0123456789abcdefgh";
    let url = format!("http://user:{marker}@proxy:8080");
    let headers = format!("{{\"x-secret\": \"{marker}\"}}");
    let database = format!("postgres://user:{marker}@db/gb");
    let settings = settings(&[
        ("API_KEYS", marker),
        ("ALLOWED_TOKENS", marker),
        ("AUTH_TOKEN", marker),
        ("PAID_KEY", marker),
        ("ENCRYPTION_KEY", marker),
        ("PROXIES", &url),
        ("CUSTOM_HEADERS", &headers),
        ("DATABASE_URL", &database),
    ])?;
    let printed = format!("{settings:?}");
    assert!(!printed.contains(marker), "{printed}");
    let view = settings.masked_view().to_string();
    assert!(!view.contains(marker), "{view}");
    for declaration in DECLARATIONS
        .iter()
        .filter(|declaration| declaration.is_secret())
    {
        assert!(
            settings
                .config_value(declaration.name)
                .to_string()
                .contains(marker),
            "{} is declared secret but was not set by this test",
            declaration.name
        );
    }
    Ok(())
}

#[test]
fn a_refused_secret_is_never_quoted() {
    let marker = "AIzaSySecretMarker0123456789abcdefgh";
    // Values each secret's parser or validation refuses, holding the marker where a parser's
    // message would quote it.
    let attempts = [
        format!("\"{marker}\""),
        format!("[\"{marker}\", 5]"),
        format!("{{\"x-key\": \"{marker}\", \"n\": 5}}"),
        format!("[\"{marker}"),
        format!("ftp://user:{marker}@host"),
        format!("http://[{marker}"),
    ];
    let mut refused = 0;
    for declaration in DECLARATIONS
        .iter()
        .filter(|declaration| declaration.is_secret())
    {
        for value in &attempts {
            if let Err(error) = settings(&[(declaration.name, value)]) {
                refused += 1;
                let message = error.to_string();
                assert!(
                    !message.contains(marker) && !message.contains(&marker[6..30]),
                    "{}: {message}",
                    declaration.name
                );
            }
        }
    }
    assert!(refused >= 8, "the values above are refused: {refused}");
}

/// The README's settings table is this declaration's: regenerate it with
/// `GB_WRITE_README=1 cargo test -p gb-runtime readme`.
#[test]
fn the_readme_table_is_the_declaration() {
    const START: &str =
        "<!-- settings table: generated from services/runtime/src/settings/mod.rs -->\n";
    const END: &str = "<!-- end of settings table -->";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let Ok(readme) = std::fs::read_to_string(&path) else {
        panic!("README.md not found at {}", path.display());
    };
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the settings table markers");
    };
    let current = &readme[start + START.len()..end];
    let expected = markdown_table();
    if current != expected && std::env::var_os("GB_WRITE_README").is_some() {
        let updated = format!("{}{START}{expected}{}", &readme[..start], &readme[end..]);
        if let Err(error) = std::fs::write(&path, updated) {
            panic!("cannot write README.md: {error}");
        }
        return;
    }
    assert_eq!(
        current, expected,
        "README.md's settings table differs from the declarations; run GB_WRITE_README=1 cargo test -p gb-runtime readme"
    );
}

#[test]
fn a_refused_proxy_is_named_without_its_password() {
    let Err(error) = settings(&[("PROXIES", "http://user:hunter2@[bad")]) else {
        panic!("accepted");
    };
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn good_proxies_and_a_zero_drain_are_accepted() -> Result<(), SettingError> {
    let settings = settings(&[
        (
            "PROXIES",
            r#"["http://user:pw@proxy:8080","socks5://127.0.0.1:1080"]"#,
        ),
        ("DRAIN_TIMEOUT", "0"),
    ])?;
    assert_eq!(settings.upstream.proxies.expose().len(), 2);
    Ok(())
}

#[test]
fn an_override_that_fails_is_left_out_and_named() -> Result<(), SettingError> {
    let base = settings(&[("TIME_OUT", "10")])?;
    let overrides = HashMap::from([
        ("MAX_RETRIES".to_owned(), "5".to_owned()),
        (
            "FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS".to_owned(),
            "1e300".to_owned(),
        ),
        ("PROXIES".to_owned(), "http://h:99999".to_owned()),
    ]);
    let (applied, refused) = base.with_applicable_overrides(&overrides);
    assert_eq!(applied.chat.max_retries, 5, "the good override applies");
    assert_eq!(
        applied.gateway.fake_stream_empty_data_interval.0,
        Duration::from_secs(5)
    );
    assert!(applied.upstream.proxies.expose().is_empty());
    assert_eq!(applied.upstream.time_out.0, Duration::from_secs(10));
    let mut names: Vec<&str> = refused.iter().map(|error| error.name).collect();
    names.sort();
    assert_eq!(
        names,
        ["FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS", "PROXIES"]
    );
    Ok(())
}

//! Every live setting fed adversarial and random values: each is either refused with the
//! setting named, or accepted and then every service can build what it builds from it (what
//! a restart does with a stored value). No value may pass validation and then stop a start.

use gb_runtime::settings::{DECLARATIONS, Scope, SettingError, Settings};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ADVERSARIAL: &[&str] = &[
    "",
    " ",
    "0",
    "-0",
    "-1",
    "1e300",
    "-1e300",
    "1e-300",
    "NaN",
    "inf",
    "-inf",
    "1e9",
    "18446744073709551616",
    "4294967296",
    "0.0000001",
    "true",
    "yes",
    "maybe",
    "[]",
    "[\"\"]",
    "[1,2]",
    "{}",
    "{\"a\":\"b\"}",
    "{\"bad header\":\"x\"}",
    "{\"x-ok\":\"line\\nbreak\"}",
    "[{\"category\":1}]",
    "null",
    "\"quoted\"",
    "http://[bad",
    "socks5://[::1",
    "http://h:99999",
    "https://",
    "http://user:pw@proxy:8080",
    "ftp://x",
    "not a url",
    "very=loud=please",
    "\u{0}",
    "\u{7f}",
    "é",
    "a,b,,c",
    "[\"http://[bad\"]",
    "{\"gemini-2.5-flash\": -5}",
    "{\"gemini-2.5-flash\": 1e300}",
    "9999999999999999999999999",
    "..",
    "/",
    "?",
    "#",
];

fn random_value(rng: &mut StdRng) -> String {
    const ALPHABET: &[char] = &[
        '[', ']', '{', '}', '"', ':', ',', '/', '@', '%', '.', '-', '+', 'e', 'E', '0', '1', '9',
        'a', 'h', 't', 'p', 's', ' ', '\u{0}', '\u{7f}', 'é', '\\', '=', '_',
    ];
    match rng.random_range(0..4) {
        0 => rng.random::<f64>().to_string(),
        1 => format!("{}", rng.random_range(-1e12..1e12)),
        2 => format!("[\"{}\"]", random_text(rng, ALPHABET)),
        _ => random_text(rng, ALPHABET),
    }
}

fn random_text(rng: &mut StdRng, alphabet: &[char]) -> String {
    let length = rng.random_range(0..24);
    (0..length)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())])
        .collect()
}

/// What the services build from their settings when they start or follow a change (the
/// upstream clients, which are costly to build, for the settings they read).
fn every_service_builds(settings: &Settings, section: &str) -> anyhow::Result<()> {
    match section {
        // The chat service's settings, upstream client included (the keys service builds the
        // same client from the same section).
        "upstream" => drop(gb_chat::chat_settings::ChatSettings::from_settings(
            settings,
        )?),
        _ => drop(gb_chat::models::ModelRules::from_settings(&settings.chat)),
    }
    gb_gateway::state::Translation::from_settings(settings);
    let names = gb_runtime::secrets::KeyCipher::from_base64(
        &gb_runtime::secrets::KeyCipher::generate_base64(),
    )?;
    gb_gateway::auth::Auth::from_settings(settings, names);
    tracing_subscriber::EnvFilter::try_new(&settings.shared.log_level)?;
    let _ = settings.logging.error_log_retention().max_age();
    let _ = settings.logging.request_log_retention().max_age();
    if let Some(token) = &settings.shared.auth_token {
        gb_runtime::grpc::InternalToken::new(token.expose())?;
    }
    Ok(())
}

fn check(name: &'static str, section: &str, value: &str) {
    let parsed: Result<Settings, SettingError> =
        Settings::from_lookup(&|wanted| (wanted == name).then(|| value.to_owned()));
    match parsed {
        Err(error) => assert_eq!(error.name, name, "{name}={value:?} refused as {error}"),
        Ok(settings) => {
            if let Err(error) = every_service_builds(&settings, section) {
                panic!("{name}={value:?} was accepted but a service cannot build from it: {error}");
            }
        }
    }
}

#[test]
fn every_value_is_refused_by_name_or_buildable() {
    let mut rng = StdRng::seed_from_u64(0x6b65_7973);
    for declaration in DECLARATIONS
        .iter()
        .filter(|declaration| declaration.scope == Scope::Live)
    {
        for value in ADVERSARIAL {
            check(declaration.name, declaration.section, value);
        }
        // The upstream settings build an HTTP client per value: fewer random ones.
        let rounds = if declaration.section == "upstream" {
            20
        } else {
            80
        };
        for _ in 0..rounds {
            check(
                declaration.name,
                declaration.section,
                &random_value(&mut rng),
            );
        }
    }
}

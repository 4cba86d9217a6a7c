//! The ids of Anthropic answers: `msg_…` for a message, `toolu_…` for a tool use. A tool use's
//! thought signature, when the client did not ask for thinking blocks to carry it, rides inside
//! its id (ids stay within Anthropic's `[A-Za-z0-9_-]`), so that the next request can give it
//! back to Gemini.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};

const TOOL_PREFIX: &str = "toolu_";
/// Hex digits of a tool use's own id, before the signature.
const TOOL_ID_DIGITS: usize = 24;

fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn message_id() -> String {
    format!("msg_{}", &random_hex()[..TOOL_ID_DIGITS])
}

/// A new tool-use id, carrying `signature` (base64, as Gemini gives it) when there is one.
pub fn tool_use_id(signature: Option<&str>) -> String {
    let id = format!("{TOOL_PREFIX}{}", &random_hex()[..TOOL_ID_DIGITS]);
    match signature.and_then(|signature| BASE64.decode(signature).ok()) {
        Some(bytes) => format!("{id}_{}", URL_SAFE_NO_PAD.encode(bytes)),
        None => id,
    }
}

/// The signature a tool-use id made by `tool_use_id` carries, as Gemini wants it back.
pub fn signature_in_tool_id(id: &str) -> Option<String> {
    let rest = id.strip_prefix(TOOL_PREFIX)?;
    let encoded = rest.get(TOOL_ID_DIGITS..)?.strip_prefix('_')?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    Some(BASE64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_round_trips_through_a_tool_use_id() {
        let signature = BASE64.encode(b"opaque signature bytes \xff\x00");
        let id = tool_use_id(Some(&signature));
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{id}"
        );
        assert_eq!(signature_in_tool_id(&id), Some(signature));
        let plain = tool_use_id(None);
        assert_eq!(plain.len(), TOOL_PREFIX.len() + TOOL_ID_DIGITS);
        assert_eq!(signature_in_tool_id(&plain), None);
        assert_eq!(signature_in_tool_id("toolu_01A09q90qw90lq917835lq9"), None);
        assert_eq!(signature_in_tool_id("call_abc"), None);
    }
}

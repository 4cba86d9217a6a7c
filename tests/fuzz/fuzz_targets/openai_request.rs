//! Any body an OpenAI client may send: parsed as a chat completion request and, when it
//! parses, translated to Gemini's shape. Nothing may panic; what translates is an object
//! with `contents`.
#![no_main]

use std::collections::HashMap;

use gb_gateway::openai::chat_request::to_gemini;
use gb_gateway::openai::chat_types::ChatCompletionRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if gb_gateway::json_limits::check(body).is_err() {
        return;
    }
    let Ok(request) = serde_json::from_slice::<ChatCompletionRequest>(body) else {
        return;
    };
    let _ = gb_gateway::openai::chat_request::remote_image_urls(&request);
    if let Ok(gemini) = to_gemini(&request, &HashMap::new()) {
        assert!(gemini["contents"].is_array(), "{gemini}");
    }
});

//! Any answer an upstream may send: translated to OpenAI's chat completion, and, chunk by
//! chunk, to its stream. Nothing may panic; the answer is always an OpenAI object.
#![no_main]

use gb_gateway::openai::chat_response::{StreamTranslator, to_openai, usage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let completion = to_openai(&answer, "chatcmpl-fuzz", "gemini-2.5-flash", 0, true);
    assert_eq!(completion["object"], "chat.completion", "{completion}");
    let _ = usage(&answer["usageMetadata"]);
    let mut stream =
        StreamTranslator::new("chatcmpl-fuzz".into(), "gemini-2.5-flash".into(), 0, true)
            .show_sources(true);
    for chunk in stream.translate(&answer).into_iter().chain(stream.finish()) {
        assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
    }
});

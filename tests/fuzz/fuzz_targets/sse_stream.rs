//! An upstream's event stream, cut into chunks anywhere: read as the chat service reads it
//! (eventsource-stream, then the in-stream error check on each event). Nothing may panic, and
//! the events do not depend on where the chunks were cut.
#![no_main]

use eventsource_stream::Eventsource;
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;

fn events(chunks: Vec<bytes::Bytes>) -> Vec<Result<(String, String), String>> {
    let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>));
    futures::executor::block_on(
        stream
            .eventsource()
            .map(|event| {
                event
                    .map(|event| {
                        let _ = gb_chat::attempts::stream_error(&event.data);
                        (event.event, event.data)
                    })
                    .map_err(|error| error.to_string())
            })
            .collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    let text = bytes::Bytes::copy_from_slice(data);
    let whole = events(vec![text.clone()]);
    // Cut after each byte whose value is a multiple of 7 (the input chooses where, and cuts
    // land inside `data:`, inside a CRLF and inside a UTF-8 sequence alike).
    let mut chunks = Vec::new();
    let mut start = 0;
    for (index, byte) in data.iter().enumerate() {
        if byte % 7 == 0 {
            chunks.push(text.slice(start..=index));
            start = index + 1;
        }
    }
    chunks.push(text.slice(start..));
    let pieces = events(chunks);
    // A UTF-8 sequence cut in two is an error in one reading and not the other; the events
    // read from valid UTF-8 are the same.
    if std::str::from_utf8(data).is_ok() {
        assert_eq!(whole, pieces);
    }
});

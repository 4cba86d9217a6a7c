//! An upstream's event stream, cut into chunks anywhere: read as the chat service reads it
//! (eventsource-stream, then the in-stream error check on each event). Nothing may panic, and
//! the events do not depend on where the chunks were cut.
#![no_main]

use arbitrary::Arbitrary;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    text: Vec<u8>,
    cuts: Vec<u16>,
}

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

fuzz_target!(|input: Input| {
    let text = bytes::Bytes::from(input.text);
    let whole = events(vec![text.clone()]);
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|cut| usize::from(*cut) % (text.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(text.slice(start..cut));
        start = cut;
    }
    chunks.push(text.slice(start..));
    let pieces = events(chunks);
    // A UTF-8 sequence cut in two is an error in one reading and not the other; the events
    // read from valid UTF-8 are the same.
    if std::str::from_utf8(&text).is_ok() {
        assert_eq!(whole, pieces);
    }
});

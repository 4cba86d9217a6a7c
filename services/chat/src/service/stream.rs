//! A stream's chunks as the chat service answers them: forwarded as they arrive, the outcome
//! reported when the stream ends (or when the client leaves it).

use bytes::Bytes;
use futures::StreamExt;
use gb_proto::chat::ChunkStream;
use gb_proto::chat::v1 as pb;

use super::ChatGrpc;
use crate::attempts::{Attempts, Ending, OpenStream, broken_stream, stream_error};
use crate::usage::Usage;

impl ChatGrpc {
    /// Turns an opened upstream stream into chunks; reports the outcome when it ends.
    pub(super) fn chunks(&self, open: OpenStream) -> ChunkStream {
        /// A stream in flight; one dropped before its end (the client went away) is reported
        /// as the success it was so far.
        struct State {
            open: OpenStream,
            attempts: Attempts,
            usage: Usage,
            done: bool,
        }
        impl State {
            fn report_success(&mut self) {
                self.done = true;
                self.attempts.report_success(
                    &self.open.record,
                    &self.open.key,
                    self.open.started,
                    self.usage,
                    self.open.attempts,
                );
            }
        }
        impl Drop for State {
            fn drop(&mut self) {
                if !self.done {
                    self.report_success();
                }
            }
        }
        let first = Bytes::clone(&open.first);
        let initial_usage = Usage::from_body(&first).unwrap_or_default();
        let state = State {
            open,
            attempts: self.attempts.clone(),
            usage: initial_usage,
            done: false,
        };
        let rest = futures::stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            let item = match state.open.rest.next().await {
                Some(Ok(event)) => match stream_error(&event.data) {
                    None => {
                        if event.data.contains("usageMetadata")
                            && let Some(usage) = Usage::from_body(event.data.as_bytes())
                        {
                            state.usage = usage;
                        }
                        Ok(pb::GeminiChunk {
                            data: Bytes::from(event.data),
                        })
                    }
                    Some(failure) => Err(failure),
                },
                Some(Err(error)) => Err(broken_stream(&error)),
                None => {
                    state.report_success();
                    return None;
                }
            };
            match item {
                Ok(chunk) => Some((Ok(chunk), state)),
                Err(failure) => {
                    // Output has reached the client: no retry, the stream ends with the error.
                    state.done = true;
                    let open = &state.open;
                    state
                        .attempts
                        .report_failure(&open.record, &open.key, open.started, &failure);
                    state.attempts.report_call_failed(
                        &open.record,
                        Ending {
                            key: Some(&open.key),
                            started: open.started,
                            status: failure.status,
                            outcome: failure.class.outcome_class(),
                            usage: state.usage,
                            attempts: open.attempts,
                        },
                    );
                    Some((Err(failure.into_chat_error().into()), state))
                }
            }
        });
        let first = futures::stream::once(async move { Ok(pb::GeminiChunk { data: first }) });
        Box::pin(first.chain(rest))
    }
}

//! OpenAI `file` parts sent as data (`file_data`) too large to go inline (Gemini refuses a
//! request over ~20 MB): each is stored as a file of the caller, and the part becomes a
//! reference to it (`file_id`), which the chat service sends through Google's Files API with
//! the key it picks. Small ones stay inline.

use base64::Engine;
use bytes::Bytes;
use gb_proto::files::v1 as pb;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::openai::chat_request::parse_data_url;
use crate::state::GatewayState;

/// The largest attachment sent inline, as base64 text (about 12 MB of content): with the rest
/// of a request, under Google's 20 MB.
pub const INLINE_LIMIT: usize = 16 * 1024 * 1024;

/// Why an attachment could not be stored: the status and message for the client.
pub struct AttachmentError(pub u16, pub String);

/// Stores the large `file_data` parts of `messages` as files of `caller` and points the parts
/// at them. A request without one costs a scan of its parts.
pub async fn store_large(
    state: &GatewayState,
    caller: &Caller,
    messages: &mut [crate::openai::chat_types::Message],
) -> Result<(), AttachmentError> {
    for message in messages {
        let Some(Value::Array(parts)) = message.content.as_mut() else {
            continue;
        };
        for part in parts {
            let Some(data) = part["file"]["file_data"]
                .as_str()
                .filter(|data| data.len() > INLINE_LIMIT)
            else {
                continue;
            };
            let (mime, encoded) =
                parse_data_url(data).unwrap_or_else(|| ("application/pdf".into(), data.to_owned()));
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| AttachmentError(400, "file.file_data is not valid base64".into()))?;
            let filename = part["file"]["filename"]
                .as_str()
                .unwrap_or("attachment")
                .to_owned();
            let start = pb::UploadStart {
                caller: Some(super::files_caller(state, caller)),
                filename: filename.clone(),
                filetype: mime,
                purpose: "user_data".into(),
                ..pb::UploadStart::default()
            };
            let content = futures::stream::once(async move {
                Ok::<_, std::convert::Infallible>(Bytes::from(decoded))
            });
            let file = super::upload(state, start, content)
                .await
                .map_err(|error| {
                    let (status, message) = error.http();
                    AttachmentError(status, message)
                })?;
            part["file"] = json!({"file_id": format!("file-{}", file.id), "filename": filename});
        }
    }
    Ok(())
}

//! Token counts of a Gemini answer, for the logs and the keys service.

/// Token counts of a Gemini answer's `usageMetadata`.
#[derive(Default, Clone, Copy)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
}

impl Usage {
    pub fn from_body(body: &[u8]) -> Option<Self> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Metadata {
            #[serde(default)]
            prompt_token_count: u64,
            #[serde(default)]
            candidates_token_count: u64,
            #[serde(default)]
            thoughts_token_count: u64,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct WithUsage {
            usage_metadata: Option<Metadata>,
        }
        let metadata = serde_json::from_slice::<WithUsage>(body)
            .ok()?
            .usage_metadata?;
        Some(Usage {
            prompt: metadata.prompt_token_count,
            completion: metadata.candidates_token_count + metadata.thoughts_token_count,
        })
    }
}

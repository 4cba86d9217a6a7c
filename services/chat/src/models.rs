//! Model names and the model handling of gemini-balance, on every route alike:
//!
//! - `X-search` (X in `SEARCH_MODELS`) adds Google Search grounding;
//! - `X-image` (X in `IMAGE_MODELS`) asks for text and image output;
//! - `X-non-thinking` (X in `THINKING_MODELS`) sets the thinking budget to 0;
//! - `THINKING_BUDGET_MAP` gives a default budget when the client sets no thinking config;
//! - `SAFETY_SETTINGS` apply when the client sends none;
//! - `FILTERED_MODELS` are hidden and refused.
//!
//! A body is parsed and rewritten only when one of these applies; otherwise it passes as bytes.

use std::collections::BTreeMap;

use bytes::Bytes;
use gb_runtime::settings::ChatSettings as ChatSection;
use serde_json::{Value, json};

/// A model name as it may appear in an upstream path (`gemini-2.5-flash`, `models/…` accepted).
pub fn normalize(model: &str) -> Option<&str> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let valid = !model.is_empty()
        && model.len() <= 128
        && model.chars().all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '-' | '.' | '_')
        });
    valid.then_some(model)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Plain,
    Search,
    Image,
    NonThinking,
}

const SUFFIXES: [(&str, Variant); 3] = [
    ("-search", Variant::Search),
    ("-image", Variant::Image),
    ("-non-thinking", Variant::NonThinking),
];

/// Why a model cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

/// A request ready for the upstream: the real model and the (possibly rewritten) body.
#[derive(Debug)]
pub struct Resolved {
    pub model: String,
    pub body: Bytes,
}

#[derive(Clone, Debug, Default)]
pub struct ModelRules {
    pub filtered: Vec<String>,
    pub search: Vec<String>,
    pub image: Vec<String>,
    pub thinking: Vec<String>,
    pub budget_map: BTreeMap<String, i64>,
    pub show_thinking: bool,
    pub safety_settings: Vec<Value>,
    pub code_execution: bool,
    pub url_context: bool,
    pub url_context_models: Vec<String>,
}

impl ModelRules {
    pub fn from_settings(settings: &ChatSection) -> Self {
        ModelRules {
            filtered: settings.filtered_models.clone(),
            search: settings.search_models.clone(),
            image: settings.image_models.clone(),
            thinking: settings.thinking_models.clone(),
            budget_map: settings.thinking_budget_map.0.clone(),
            show_thinking: settings.show_thinking_process,
            safety_settings: settings.safety_settings.0.clone(),
            code_execution: settings.tools_code_execution_enabled,
            url_context: settings.url_context_enabled,
            url_context_models: settings.url_context_models.clone(),
        }
    }

    pub fn is_filtered(&self, model: &str) -> bool {
        self.filtered.iter().any(|filtered| filtered == model)
    }

    fn split<'a>(&self, model: &'a str) -> (&'a str, Variant) {
        for (suffix, variant) in SUFFIXES {
            if let Some(base) = model.strip_suffix(suffix) {
                let known = match variant {
                    Variant::Search => &self.search,
                    Variant::Image => &self.image,
                    Variant::NonThinking => &self.thinking,
                    Variant::Plain => continue,
                };
                if known.iter().any(|listed| listed == base) {
                    return (base, variant);
                }
            }
        }
        (model, Variant::Plain)
    }

    /// The model a request may use, without a body (model lookups).
    pub fn check(&self, model: &str) -> Result<String, Refusal> {
        let Some(model) = normalize(model) else {
            return Err(Refusal {
                status: 400,
                message: format!("invalid model name {model:?}"),
            });
        };
        let (base, _) = self.split(model);
        if self.is_filtered(base) {
            return Err(Refusal {
                status: 404,
                message: format!("model {base} is not available on this gateway (FILTERED_MODELS)"),
            });
        }
        Ok(base.to_owned())
    }

    /// Resolves a generate request: the real model, and the body with what the variant and the
    /// defaults add. The body is left untouched when nothing applies.
    pub fn resolve(&self, model: &str, body: Bytes) -> Result<Resolved, Refusal> {
        let base = self.check(model)?;
        let (_, variant) = self.split(normalize(model).unwrap_or(model));
        let default_budget = self
            .budget_map
            .get(model)
            .or_else(|| self.budget_map.get(&base))
            .copied();
        let needs_safety =
            !self.safety_settings.is_empty() && !contains(&body, b"\"safetySettings\"");
        let wants_url_context = self.url_context && self.url_context_models.contains(&base);
        let wants_code_execution = self.code_execution
            && variant == Variant::Plain
            && !self.thinking.contains(&base)
            && !self.image.contains(&base);
        let built_in_tools = wants_url_context || wants_code_execution;
        if variant == Variant::Plain && default_budget.is_none() && !needs_safety && !built_in_tools
        {
            return Ok(Resolved { model: base, body });
        }
        let Ok(mut request) = serde_json::from_slice::<Value>(&body) else {
            // Not JSON: let the upstream say so, in its own words.
            return Ok(Resolved { model: base, body });
        };
        let Some(object) = request.as_object_mut() else {
            return Ok(Resolved { model: base, body });
        };
        match variant {
            Variant::Search => {
                let tools = object.entry("tools").or_insert_with(|| json!([]));
                if let Some(tools) = tools.as_array_mut()
                    && !tools.iter().any(|tool| tool.get("googleSearch").is_some())
                {
                    tools.push(json!({"googleSearch": {}}));
                }
            }
            Variant::Image => {
                object.remove("systemInstruction");
                generation_config(object)
                    .insert("responseModalities".into(), json!(["TEXT", "IMAGE"]));
            }
            Variant::NonThinking => {
                let config = generation_config(object);
                if !config.contains_key("thinkingConfig") {
                    let budget = if base.contains("2.5-pro") { 128 } else { 0 };
                    config.insert("thinkingConfig".into(), json!({"thinkingBudget": budget}));
                }
            }
            Variant::Plain => {}
        }
        if let Some(budget) = default_budget {
            let show_thinking = self.show_thinking;
            let config = generation_config(object);
            if !config.contains_key("thinkingConfig") {
                config.insert(
                    "thinkingConfig".into(),
                    json!({"thinkingBudget": budget, "includeThoughts": show_thinking && budget != 0}),
                );
            }
        }
        if built_in_tools {
            add_built_in_tools(object, wants_code_execution, wants_url_context);
        }
        if needs_safety && !object.contains_key("safetySettings") {
            object.insert(
                "safetySettings".into(),
                Value::Array(self.safety_settings.clone()),
            );
        }
        Ok(Resolved {
            model: base,
            body: Bytes::from(request.to_string()),
        })
    }

    /// Removes the filtered models from an upstream `models.list` answer and adds the
    /// `-search`, `-image` and `-non-thinking` variants; other fields are untouched.
    pub fn list(&self, body: &Bytes) -> Bytes {
        let Ok(mut list) = serde_json::from_slice::<Value>(body) else {
            return body.clone();
        };
        let Some(models) = list.get_mut("models").and_then(Value::as_array_mut) else {
            return body.clone();
        };
        models.retain(|model| !self.is_filtered(model_id(model)));
        let mut variants = Vec::new();
        for model in models.iter() {
            let id = model_id(model);
            for (suffix, variant) in SUFFIXES {
                let listed = match variant {
                    Variant::Search => &self.search,
                    Variant::Image => &self.image,
                    Variant::NonThinking => &self.thinking,
                    Variant::Plain => continue,
                };
                if listed.iter().any(|name| name == id) {
                    let mut copy = model.clone();
                    copy["name"] = json!(format!("models/{id}{suffix}"));
                    if let Some(display) = model["displayName"].as_str() {
                        copy["displayName"] =
                            json!(format!("{display} ({})", suffix.trim_start_matches('-')));
                    }
                    variants.push(copy);
                }
            }
        }
        models.extend(variants);
        Bytes::from(list.to_string())
    }
}

/// `TOOLS_CODE_EXECUTION_ENABLED` and `URL_CONTEXT_ENABLED`, as gemini-balance applies them:
/// never beside the client's own functions or a JSON response, and code execution only on
/// text (no media in the request).
fn add_built_in_tools(
    object: &mut serde_json::Map<String, Value>,
    code_execution: bool,
    url_context: bool,
) {
    let has_functions = object
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| {
            tools
                .iter()
                .any(|tool| tool.get("functionDeclarations").is_some())
        });
    let json_answer = object
        .get("generationConfig")
        .and_then(|config| config.get("responseMimeType"))
        .and_then(Value::as_str)
        .is_some_and(|mime| mime.contains("json"));
    if has_functions || json_answer {
        return;
    }
    let has_media = object.get("contents").is_some_and(|contents| {
        let text = contents.to_string();
        text.contains("\"inlineData\"") || text.contains("\"fileData\"")
    });
    let Some(tools) = object
        .entry("tools")
        .or_insert_with(|| json!([]))
        .as_array_mut()
    else {
        return;
    };
    if code_execution && !has_media && !tools.iter().any(|tool| tool.get("codeExecution").is_some())
    {
        tools.push(json!({"codeExecution": {}}));
    }
    if url_context && !tools.iter().any(|tool| tool.get("urlContext").is_some()) {
        tools.push(json!({"urlContext": {}}));
    }
}

fn model_id(model: &Value) -> &str {
    let name = model["name"].as_str().unwrap_or_default();
    name.strip_prefix("models/").unwrap_or(name)
}

fn generation_config(
    object: &mut serde_json::Map<String, Value>,
) -> &mut serde_json::Map<String, Value> {
    let config = object
        .entry("generationConfig")
        .or_insert_with(|| json!({}));
    if !config.is_object() {
        *config = json!({});
    }
    match config {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ModelRules {
        ModelRules {
            filtered: vec!["old-model".into()],
            search: vec!["gemini-2.5-flash".into()],
            image: vec!["gemini-2.0-flash-exp".into()],
            thinking: vec!["gemini-2.5-pro".into()],
            budget_map: BTreeMap::from([("gemini-2.5-flash".into(), 1000)]),
            show_thinking: true,
            safety_settings: vec![],
            code_execution: false,
            url_context: false,
            url_context_models: vec!["gemini-2.5-flash".into()],
        }
    }

    #[test]
    fn built_in_tools_when_enabled_and_not_beside_functions() {
        let mut rules = rules();
        rules.code_execution = true;
        rules.url_context = true;
        let plain = rules
            .resolve(
                "gemini-2.5-flash",
                body(json!({"contents": [{"parts": [{"text": "x"}]}]})),
            )
            .unwrap();
        assert_eq!(
            parsed(&plain)["tools"],
            json!([{"codeExecution": {}}, {"urlContext": {}}])
        );
        let with_functions =
            json!({"contents": [], "tools": [{"functionDeclarations": [{"name": "f"}]}]});
        let kept = rules
            .resolve("gemini-2.0-flash", body(with_functions.clone()))
            .unwrap();
        assert_eq!(parsed(&kept)["tools"], with_functions["tools"]);
        let media = json!({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": ""}}]}]});
        let no_code = rules.resolve("gemini-2.0-flash", body(media)).unwrap();
        assert!(parsed(&no_code)["tools"].as_array().unwrap().is_empty());
    }

    fn body(value: Value) -> Bytes {
        Bytes::from(value.to_string())
    }

    fn parsed(resolved: &Resolved) -> Value {
        serde_json::from_slice(&resolved.body).unwrap()
    }

    #[test]
    fn names() {
        assert_eq!(
            normalize("models/gemini-2.5-flash"),
            Some("gemini-2.5-flash")
        );
        assert_eq!(normalize("../etc"), None);
        assert_eq!(normalize("a b"), None);
    }

    #[test]
    fn plain_models_pass_untouched() {
        let original = Bytes::from_static(b"{\"contents\":[] , \"x\": 1}");
        let resolved = rules()
            .resolve("gemini-2.0-flash", original.clone())
            .unwrap();
        assert_eq!(resolved.body, original);
        assert_eq!(resolved.model, "gemini-2.0-flash");
    }

    #[test]
    fn search_adds_grounding() {
        let resolved = rules()
            .resolve("gemini-2.5-flash-search", body(json!({"contents": []})))
            .unwrap();
        assert_eq!(resolved.model, "gemini-2.5-flash");
        assert_eq!(parsed(&resolved)["tools"], json!([{"googleSearch": {}}]));
    }

    #[test]
    fn unknown_variant_is_just_a_model_name() {
        let resolved = rules()
            .resolve("gemini-2.0-flash-search", body(json!({})))
            .unwrap();
        assert_eq!(resolved.model, "gemini-2.0-flash-search");
    }

    #[test]
    fn image_and_non_thinking() {
        let image = rules()
            .resolve(
                "gemini-2.0-flash-exp-image",
                body(json!({"systemInstruction": {}, "contents": []})),
            )
            .unwrap();
        assert_eq!(
            parsed(&image)["generationConfig"]["responseModalities"],
            json!(["TEXT", "IMAGE"])
        );
        assert!(parsed(&image).get("systemInstruction").is_none());
        let quiet = rules()
            .resolve("gemini-2.5-pro-non-thinking", body(json!({})))
            .unwrap();
        assert_eq!(
            parsed(&quiet)["generationConfig"]["thinkingConfig"]["thinkingBudget"],
            128
        );
    }

    #[test]
    fn budget_map_is_a_default_only() {
        let defaulted = rules()
            .resolve("gemini-2.5-flash", body(json!({})))
            .unwrap();
        assert_eq!(
            parsed(&defaulted)["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 1000, "includeThoughts": true})
        );
        let own = json!({"generationConfig": {"thinkingConfig": {"thinkingBudget": 5}}});
        let kept = rules()
            .resolve("gemini-2.5-flash", body(own.clone()))
            .unwrap();
        assert_eq!(parsed(&kept), own);
    }

    #[test]
    fn safety_settings_only_when_the_client_sends_none() {
        let mut rules = rules();
        rules.safety_settings =
            vec![json!({"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"})];
        let added = rules.resolve("gemini-2.0-flash", body(json!({}))).unwrap();
        assert_eq!(parsed(&added)["safetySettings"][0]["threshold"], "OFF");
        let own = json!({"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_LOW_AND_ABOVE"}]});
        let kept = rules
            .resolve("gemini-2.0-flash", body(own.clone()))
            .unwrap();
        assert_eq!(parsed(&kept), own);
    }

    #[test]
    fn filtered_models_are_refused_and_hidden() {
        assert_eq!(rules().check("old-model").unwrap_err().status, 404);
        let list = body(json!({"models": [
            {"name": "models/old-model"},
            {"name": "models/gemini-2.5-flash", "displayName": "Flash", "x": 1},
            {"name": "models/gemini-2.5-pro"}
        ], "nextPageToken": "t"}));
        let listed: Value = serde_json::from_slice(&rules().list(&list)).unwrap();
        let names: Vec<&str> = listed["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|model| model["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            vec![
                "models/gemini-2.5-flash",
                "models/gemini-2.5-pro",
                "models/gemini-2.5-flash-search",
                "models/gemini-2.5-pro-non-thinking"
            ]
        );
        assert_eq!(listed["models"][2]["x"], 1);
        assert_eq!(listed["models"][2]["displayName"], "Flash (search)");
        assert_eq!(listed["nextPageToken"], "t");
    }
}

//! Model names: validation, `FILTERED_MODELS`, and the filtering of the upstream list.

use bytes::Bytes;

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

pub fn is_filtered(filtered_models: &[String], model: &str) -> bool {
    filtered_models.iter().any(|filtered| filtered == model)
}

/// Removes the filtered models from an upstream `models.list` answer; other fields untouched.
pub fn filter_list(body: &Bytes, filtered_models: &[String]) -> Bytes {
    if filtered_models.is_empty() {
        return body.clone();
    }
    let Ok(mut list) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.clone();
    };
    if let Some(models) = list
        .get_mut("models")
        .and_then(serde_json::Value::as_array_mut)
    {
        models.retain(|model| {
            let name = model["name"].as_str().unwrap_or_default();
            !is_filtered(
                filtered_models,
                name.strip_prefix("models/").unwrap_or(name),
            )
        });
    }
    Bytes::from(list.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            normalize("models/gemini-2.5-flash"),
            Some("gemini-2.5-flash")
        );
        assert_eq!(
            normalize("gemini-2.0-flash-exp"),
            Some("gemini-2.0-flash-exp")
        );
        assert_eq!(normalize("../etc"), None);
        assert_eq!(normalize("a b"), None);
        assert_eq!(normalize(""), None);
    }

    #[test]
    fn filtering_keeps_other_fields() {
        let body = Bytes::from(
            r#"{"models":[{"name":"models/a","x":1},{"name":"models/b"}],"nextPageToken":"t"}"#,
        );
        let filtered: serde_json::Value =
            serde_json::from_slice(&filter_list(&body, &["b".into()])).unwrap();
        assert_eq!(filtered["models"].as_array().unwrap().len(), 1);
        assert_eq!(filtered["models"][0]["x"], 1);
        assert_eq!(filtered["nextPageToken"], "t");
    }
}

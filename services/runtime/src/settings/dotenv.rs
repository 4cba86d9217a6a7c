//! The text forms gemini-balance's users write: `.env` files with JSON values, and lists as JSON
//! or comma-separated.

use std::collections::HashMap;

/// A `.env` file as gemini-balance's users write it (python-dotenv's rules): `KEY=value` lines,
/// `#` comments, optional `export `, values in double quotes (with `\n`, `\"` escapes) or single
/// quotes (literal), and unquoted values kept verbatim, so that `API_KEYS=["a","b"]` and JSON
/// objects survive (a general-purpose dotenv parser strips their inner quotes).
pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
    let mut values = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            value[1..value.len() - 1]
                .replace("\\n", "\n")
                .replace("\\\"", "\"")
        } else if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
            value[1..value.len() - 1].to_owned()
        } else {
            // An unquoted value ends at a comment that follows a space.
            value
                .split(" #")
                .next()
                .unwrap_or_default()
                .trim_end()
                .to_owned()
        };
        values.insert(name.trim().to_owned(), value);
    }
    values
}

/// A list in gemini-balance's JSON form or comma-separated; blanks and duplicates dropped, order kept.
pub fn parse_list(value: &str) -> Result<Vec<String>, String> {
    let value = value.trim();
    let items: Vec<String> = if value.starts_with('[') {
        serde_json::from_str::<Vec<String>>(value)
            .map_err(|error| format!("not a JSON list of strings: {error}"))?
    } else {
        value.split(',').map(str::to_owned).collect()
    };
    let mut seen = std::collections::HashSet::new();
    Ok(items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty() && seen.insert(item.clone()))
        .collect())
}

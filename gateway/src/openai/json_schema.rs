//! JSON Schema as OpenAI clients write it, made into the OpenAPI subset that Gemini's
//! `Schema` accepts: unknown keywords dropped, `type: [T, "null"]` made `nullable`, `const`
//! made a one-value `enum`, local `$ref`s inlined.

use serde_json::{Map, Value, json};

/// The keywords Gemini's `Schema` knows.
const KEPT: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// How deep `$ref`s are followed (recursive schemas stop there).
const MAX_DEPTH: usize = 16;

pub fn clean(schema: &Value) -> Value {
    let definitions = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .cloned()
        .unwrap_or(Value::Null);
    clean_node(schema, &definitions, 0)
}

fn resolve<'a>(reference: &str, definitions: &'a Value) -> Option<&'a Value> {
    let name = reference
        .strip_prefix("#/$defs/")
        .or_else(|| reference.strip_prefix("#/definitions/"))?;
    definitions.get(name)
}

fn clean_node(node: &Value, definitions: &Value, depth: usize) -> Value {
    let Some(object) = node.as_object() else {
        return node.clone();
    };
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        return match resolve(reference, definitions) {
            Some(target) if depth < MAX_DEPTH => clean_node(target, definitions, depth + 1),
            _ => json!({"type": "object"}),
        };
    }
    let mut cleaned = Map::new();
    for (keyword, value) in object {
        match keyword.as_str() {
            "type" => match value {
                Value::Array(types) => {
                    let non_null: Vec<&Value> = types
                        .iter()
                        .filter(|kind| kind.as_str() != Some("null"))
                        .collect();
                    if non_null.len() < types.len() {
                        cleaned.insert("nullable".into(), Value::Bool(true));
                    }
                    if let Some(first) = non_null.first() {
                        cleaned.insert("type".into(), (*first).clone());
                    }
                }
                other => {
                    cleaned.insert("type".into(), other.clone());
                }
            },
            "const" => {
                cleaned.insert("enum".into(), json!([value]));
            }
            "properties" => {
                let properties: Map<String, Value> = value
                    .as_object()
                    .map(|properties| {
                        properties
                            .iter()
                            .map(|(name, schema)| {
                                (name.clone(), clean_node(schema, definitions, depth + 1))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                cleaned.insert("properties".into(), Value::Object(properties));
            }
            "items" => {
                cleaned.insert("items".into(), clean_node(value, definitions, depth + 1));
            }
            "anyOf" | "oneOf" => {
                let options: Vec<Value> = value
                    .as_array()
                    .map(|options| {
                        options
                            .iter()
                            .map(|option| clean_node(option, definitions, depth + 1))
                            .collect()
                    })
                    .unwrap_or_default();
                cleaned.insert("anyOf".into(), Value::Array(options));
            }
            kept if KEPT.contains(&kept) => {
                cleaned.insert(keyword.clone(), value.clone());
            }
            _ => {}
        }
    }
    // Gemini refuses an enum of non-strings; it describes strings only.
    if let Some(Value::Array(values)) = cleaned.get("enum")
        && values.iter().any(|value| !value.is_string())
    {
        cleaned.remove("enum");
    }
    Value::Object(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_what_gemini_rejects_and_keeps_property_names() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "default": {"type": ["string", "null"], "examples": ["x"]},
                "kind": {"const": "fixed"},
                "unit": {"$ref": "#/$defs/unit"}
            },
            "required": ["default"],
            "$defs": {"unit": {"type": "string", "enum": ["c", "f"]}}
        });
        assert_eq!(
            clean(&schema),
            json!({
                "type": "object",
                "properties": {
                    "default": {"type": "string", "nullable": true},
                    "kind": {"enum": ["fixed"]},
                    "unit": {"type": "string", "enum": ["c", "f"]}
                },
                "required": ["default"]
            })
        );
    }

    #[test]
    fn recursive_references_stop() {
        let schema = json!({"$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}}, "$ref": "#/$defs/node"});
        let cleaned = clean(&schema);
        assert_eq!(cleaned["type"], "object");
    }
}

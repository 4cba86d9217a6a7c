//! What a JSON body must be before it goes upstream: JSON, and nested no deeper than Google
//! accepts. A body the upstream would refuse with a 5xx would otherwise charge a key a failure
//! for the client's own mistake (every retry another key).

/// Google refuses request bodies nested deeper than about 100 levels.
pub const MAX_DEPTH: usize = 100;

/// How deeply a JSON text nests (objects and arrays), read as bytes: strings and their escapes
/// are skipped, nothing is allocated.
pub fn depth(body: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A body fit to forward: nested at most [`MAX_DEPTH`] deep, and valid JSON.
pub fn check(body: &[u8]) -> Result<(), String> {
    if depth(body) > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map(drop)
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn depth_counts_structure_not_strings() {
        assert_eq!(depth(b"{}"), 1);
        assert_eq!(depth(br#"{"a":[{"b":"[[[[\"{{"}]}"#), 3);
        assert_eq!(depth(nested(150).as_bytes()), 150);
    }

    #[test]
    fn too_deep_or_not_json_is_refused() {
        assert!(check(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert!(check(nested(MAX_DEPTH + 1).as_bytes()).is_err());
        assert!(check(b"{nope").is_err());
        assert!(check(br#"{"contents":[{"parts":[{"text":"hi"}]}]}"#).is_ok());
    }
}

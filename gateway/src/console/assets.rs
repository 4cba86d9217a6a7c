//! The console's assets, embedded in the binary: CSS, the scripts, the icon and the vendored
//! Chart.js (from npm's `chart.js`, its licence beside it). Served with an `ETag` of their
//! content; pages link them with `?v=` of every asset's hash, so a browser may keep them for
//! a year and still gets a changed one at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $content_type:literal,)*) => {
        static ASSETS: &[Asset] = &[$(Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../../assets/", $name)),
        },)*];
    };
}

assets! {
    "console.css" => "text/css; charset=utf-8",
    "console.js" => "text/javascript; charset=utf-8",
    "keys.js" => "text/javascript; charset=utf-8",
    "config.js" => "text/javascript; charset=utf-8",
    "logs.js" => "text/javascript; charset=utf-8",
    "stats.js" => "text/javascript; charset=utf-8",
    "files.js" => "text/javascript; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "vendor/chart.umd.min.js" => "text/javascript; charset=utf-8",
    "vendor/chart.js.LICENSE.md" => "text/markdown; charset=utf-8",
}

/// Each asset's ETag, and the version every page links with.
static HASHES: LazyLock<(Vec<String>, String)> = LazyLock::new(|| {
    let mut all = Sha256::new();
    let tags = ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.bytes);
            all.update(digest);
            format!("\"{}\"", hex(&digest[..12]))
        })
        .collect();
    (tags, hex(&all.finalize()[..6]))
});

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The version pages put in asset links.
pub fn version() -> &'static str {
    &HASHES.1
}

pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((index, asset)) = ASSETS
        .iter()
        .enumerate()
        .find(|(_, asset)| asset.name == name)
    else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = &HASHES.0[index];
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let tag = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\""));
    if not_modified {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, tag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::ETAG, tag),
            (header::CACHE_CONTROL, cache),
        ],
        asset.bytes,
    )
        .into_response()
}

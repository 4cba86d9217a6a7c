//! Fetches images that OpenAI requests give by `http(s)` URL: concurrently, without blocking,
//! within a size and a time limit, and (unless `FETCH_PRIVATE_URLS`) never from loopback,
//! private or link-local addresses named literally or by `localhost`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt;

use super::chat_request::FetchedMedia;

pub const MAX_MEDIA_BYTES: usize = 20 * 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct MediaFetcher {
    client: reqwest::Client,
    allow_private: bool,
}

fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    }
}

impl MediaFetcher {
    pub fn new(allow_private: bool) -> Self {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        MediaFetcher {
            client,
            allow_private,
        }
    }

    fn check(&self, url: &str) -> Result<(), String> {
        let parsed = url::Url::parse(url).map_err(|error| format!("image URL {url:?}: {error}"))?;
        if self.allow_private {
            return Ok(());
        }
        let refused = match parsed.host() {
            Some(url::Host::Domain(domain)) => {
                domain.eq_ignore_ascii_case("localhost") || domain.ends_with(".localhost")
            }
            Some(url::Host::Ipv4(v4)) => is_private(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => is_private(IpAddr::V6(v6)),
            None => true,
        };
        if refused {
            return Err(format!("image URL {url:?} points at a private address"));
        }
        Ok(())
    }

    async fn fetch(&self, url: &str) -> Result<FetchedMedia, String> {
        self.check(url)?;
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|error| format!("image URL {url:?} could not be fetched: {error}"))?;
        if !response.status().is_success() {
            return Err(format!("image URL {url:?} answered {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|length| length as usize > MAX_MEDIA_BYTES)
        {
            return Err(format!(
                "image URL {url:?} is larger than {MAX_MEDIA_BYTES} bytes"
            ));
        }
        let mime_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.split(';').next().unwrap_or(value).trim().to_owned())
            .filter(|mime| !mime.is_empty() && mime != "application/octet-stream")
            .unwrap_or_else(|| guess_mime(url).to_owned());
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| format!("image URL {url:?}: {error}"))?;
            if body.len() + chunk.len() > MAX_MEDIA_BYTES {
                return Err(format!(
                    "image URL {url:?} is larger than {MAX_MEDIA_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchedMedia {
            mime_type,
            base64: BASE64.encode(body),
        })
    }

    /// Fetches every URL concurrently; the first failure is the client's error.
    pub async fn fetch_all(
        &self,
        urls: Vec<String>,
    ) -> Result<HashMap<String, FetchedMedia>, String> {
        let results: Vec<(String, Result<FetchedMedia, String>)> = futures::stream::iter(urls)
            .map(|url| async move {
                let result = self.fetch(&url).await;
                (url, result)
            })
            .buffer_unordered(4)
            .collect()
            .await;
        let mut fetched = HashMap::new();
        for (url, result) in results {
            fetched.insert(url, result?);
        }
        Ok(fetched)
    }
}

fn guess_mime(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    if path.ends_with(".png") {
        "image/png"
    } else if path.ends_with(".gif") {
        "image/gif"
    } else if path.ends_with(".webp") {
        "image/webp"
    } else {
        "image/jpeg"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_refused_unless_allowed() {
        let strict = MediaFetcher::new(false);
        for url in [
            "http://127.0.0.1/a.png",
            "http://localhost:8080/a.png",
            "http://10.0.0.1/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest",
        ] {
            assert!(strict.check(url).is_err(), "{url}");
        }
        assert!(strict.check("https://example.com/a.png").is_ok());
        assert!(
            MediaFetcher::new(true)
                .check("http://127.0.0.1/a.png")
                .is_ok()
        );
    }
}

//! The HTTP side of the Gemini API: one pooled client per route out (direct, or one per
//! proxy) and a key→proxy mapping that is stable across restarts and replicas.

use std::time::Duration;

use gb_runtime::settings::UpstreamSettings;
use sha2::{Digest, Sha256};

/// Which of `count` routes out (proxies) a key always takes: the same on every restart and
/// every replica, since it hashes the key with SHA-256 rather than a per-process seed.
pub fn stable_route_index(key: &str, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % count as u64) as usize
}

/// Where a request carries the key: Gemini-native endpoints take `x-goog-api-key`, Google's
/// OpenAI-compatible layer takes `Authorization: Bearer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPlacement {
    GoogApiKey,
    Bearer,
}

/// The HTTP side of the Gemini API.
#[derive(Clone)]
pub struct Upstream {
    base_url: String,
    /// `base_url` parsed once (its host's IDNA processing is most of a parse): each request's
    /// URL is a copy with its path and query set.
    base: Option<url::Url>,
    /// One client (connection pool) per route out: the direct one, or one per proxy.
    clients: Vec<reqwest::Client>,
    timeout: Duration,
}

impl Upstream {
    /// The upstream as the settings describe it (`BASE_URL`, `PROXIES`, `TIME_OUT`,
    /// `CUSTOM_HEADERS`).
    pub fn from_settings(settings: &UpstreamSettings) -> Result<Self, reqwest::Error> {
        Self::new(
            &settings.base_url,
            settings.proxies.expose(),
            settings.time_out.0,
            &settings.custom_headers.expose().0,
        )
    }

    pub fn new(
        base_url: &str,
        proxies: &[String],
        timeout: Duration,
        custom_headers: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, reqwest::Error> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in custom_headers {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let builder = || {
            reqwest::Client::builder()
                .default_headers(headers.clone())
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(256)
                .tcp_nodelay(true)
        };
        let clients = if proxies.is_empty() {
            vec![builder().build()?]
        } else {
            proxies
                .iter()
                .map(|proxy| builder().proxy(reqwest::Proxy::all(proxy)?).build())
                .collect::<Result<_, _>>()?
        };
        let base_url = base_url.trim_end_matches('/').to_owned();
        Ok(Upstream {
            base: url::Url::parse(&base_url)
                .ok()
                .filter(|url| url.query().is_none() && !url.cannot_be_a_base()),
            base_url,
            clients,
            timeout,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A request to Google's upload endpoint for `{BASE_URL}/{path}`: `/upload` before the
    /// base's path (`https://host/v1beta` → `https://host/upload/v1beta/files`), through the
    /// key's route, bounded per read (a large file takes its time).
    pub fn upload_request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        let client = &self.clients[self.route_index(key)];
        let url = match &self.base {
            Some(base) => {
                let mut url = base.clone();
                url.set_path(&format!(
                    "/upload{}/{}",
                    base.path().trim_end_matches('/'),
                    path.trim_start_matches('/')
                ));
                url.to_string()
            }
            None => format!("{}/{path}", self.base_url),
        };
        client.request(method, url).header("x-goog-api-key", key)
    }

    /// A request to a URL the upstream gave (a resumable upload's), through the key's route.
    pub fn request_to(
        &self,
        method: reqwest::Method,
        url: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        self.clients[self.route_index(key)]
            .request(method, url)
            .header("x-goog-api-key", key)
    }

    /// The upstream's host, for `server.address` on spans.
    pub fn host(&self) -> String {
        url::Url::parse(&self.base_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The index of the proxy this key goes through (0 without proxies).
    pub fn route_index(&self, key: &str) -> usize {
        stable_route_index(key, self.clients.len())
    }

    /// A request to `{BASE_URL}/{path}` with the key in `x-goog-api-key`, through the key's route.
    /// `whole_timeout` bounds unary calls; streams are bounded per read instead.
    pub fn request(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        key: &str,
        whole_timeout: bool,
    ) -> reqwest::RequestBuilder {
        self.request_as(
            method,
            path_and_query,
            key,
            KeyPlacement::GoogApiKey,
            whole_timeout,
        )
    }

    /// As [`Upstream::request`], with the key where the endpoint expects it.
    pub fn request_as(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        key: &str,
        placement: KeyPlacement,
        whole_timeout: bool,
    ) -> reqwest::RequestBuilder {
        let client = &self.clients[self.route_index(key)];
        let path_and_query = path_and_query.trim_start_matches('/');
        let request = match &self.base {
            Some(base) => {
                let (path, query) = match path_and_query.split_once('?') {
                    Some((path, query)) => (path, Some(query)),
                    None => (path_and_query, None),
                };
                let mut url = base.clone();
                url.set_path(&format!("{}/{path}", base.path().trim_end_matches('/')));
                url.set_query(query);
                client.request(method, url)
            }
            // Not a URL: reqwest reports it on the request, as it always did.
            None => client.request(method, format!("{}/{path_and_query}", self.base_url)),
        };
        let mut request = match placement {
            KeyPlacement::GoogApiKey => request.header("x-goog-api-key", key),
            KeyPlacement::Bearer => request.bearer_auth(key),
        };
        if whole_timeout {
            request = request.timeout(self.timeout);
        }
        request
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_index_is_stable_and_spread() {
        assert_eq!(
            stable_route_index("key-a", 3),
            stable_route_index("key-a", 3)
        );
        assert_eq!(stable_route_index("anything", 1), 0);
        let used: std::collections::HashSet<usize> = (0..64)
            .map(|i| stable_route_index(&format!("key-{i}"), 4))
            .collect();
        assert_eq!(used.len(), 4);
        // A fixed value, so that a change of hash (and of every key's proxy) cannot pass unseen.
        // (Python: int.from_bytes(sha256(key)[:8], "big") % 7 == 4.)
        assert_eq!(stable_route_index("AIzaSyStableMappingExample", 7), 4);
    }

    /// Each request's URL, made from the base parsed once, is the one the base and the path
    /// written out would parse to.
    #[test]
    fn request_urls_are_the_base_and_the_path() {
        let none = std::collections::BTreeMap::new();
        for base in [
            "https://generativelanguage.googleapis.com/v1beta",
            "https://generativelanguage.googleapis.com/v1beta/",
            "http://127.0.0.1:8080",
            "http://bücher.example/gemini/v1beta",
        ] {
            let upstream = Upstream::new(base, &[], Duration::from_secs(5), &none).unwrap();
            for path in [
                "models/gemini-2.5-flash:generateContent",
                "/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                "models?pageSize=10&pageToken=a%2Fb",
                "openai/chat/completions",
            ] {
                let built = upstream
                    .request(reqwest::Method::POST, path, "AIzaSyExample", false)
                    .build()
                    .unwrap();
                let written = format!(
                    "{}/{}",
                    base.trim_end_matches('/'),
                    path.trim_start_matches('/')
                );
                assert_eq!(
                    built.url(),
                    &url::Url::parse(&written).unwrap(),
                    "{base} {path}"
                );
            }
        }
    }
}

/// What one request through a proxy to the upstream's host came to.
#[derive(Clone, Debug)]
pub struct ProxyReach {
    /// The upstream's HTTP status, when one came.
    pub status: Option<u16>,
    pub latency: Duration,
    /// Why no answer came (the client's error, without the proxy's credentials).
    pub error: Option<String>,
}

/// One `GET {base_url}/models` through `proxy`, without a key (Google answers it with an error,
/// which proves the way there), bounded by `limit`.
pub async fn reach_through_proxy(base_url: &str, proxy: &str, limit: Duration) -> ProxyReach {
    let started = std::time::Instant::now();
    let client = reqwest::Proxy::all(proxy).and_then(|proxy| {
        reqwest::Client::builder()
            .proxy(proxy)
            .connect_timeout(limit)
            .timeout(limit)
            .build()
    });
    let answer = match client {
        Ok(client) => {
            client
                .get(format!("{}/models", base_url.trim_end_matches('/')))
                .send()
                .await
        }
        Err(error) => Err(error),
    };
    match answer {
        Ok(answer) => ProxyReach {
            status: Some(answer.status().as_u16()),
            latency: started.elapsed(),
            error: None,
        },
        Err(error) => {
            // The error and its causes, without the URL (a proxy's may carry its password).
            let error = error.without_url();
            let mut text = error.to_string();
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                text.push_str(": ");
                text.push_str(&inner.to_string());
                cause = inner.source();
            }
            ProxyReach {
                status: None,
                latency: started.elapsed(),
                error: Some(text.replace(proxy, "the proxy")),
            }
        }
    }
}

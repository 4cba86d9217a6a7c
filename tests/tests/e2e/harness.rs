//! `TestApp`: the real services started on port 0 in either run mode, on a fresh SQLite file or
//! a fresh Postgres database, against a fresh mock Gemini API; plus a log capture shared by the
//! whole test binary.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use gb_launcher as launcher;
use gb_runtime::settings::Settings;
use gb_tests::mock_gemini::MockGemini;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const CLIENT_TOKEN: &str = "sk-client-token-for-tests";
pub const ADMIN_TOKEN: &str = "sk-admin-token-for-tests";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    AllInOne,
    Microservices,
}

/// A split service that a test can stop and start again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Logging,
    Keys,
}

type ServiceRun = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A key value in Google's real format (`AIzaSy` + 33 characters), unique per call, and
/// unique in its masked form too (`AIzaSy…` + the last four characters, a counter of this
/// process): tests find keys in the admin listing by their mask, and random endings collided
/// (one run in a few thousand).
pub fn new_key() -> String {
    static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let mut made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The counter in four lower-case letters (456,976 keys before one repeats).
    let ending: String = (0..4)
        .map(|_| {
            let letter = char::from(b'a' + (made % 26) as u8);
            made /= 26;
            letter
        })
        .collect();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "AIzaSy{}{ending}",
        id[..29].to_uppercase().replace('0', "x")
    )
}

// ----- log capture -----

#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<LogBuffer> = OnceLock::new();

/// How many batches of `what` (`log records`, `outcome reports`) have failed a fourth time in
/// a row so far: past the three tries after which they were once dropped.
pub fn batches_retried_past_three_tries(what: &str) -> usize {
    captured_logs()
        .lines()
        .filter(|line| {
            line.contains("sending a batch failed; retrying")
                && line.contains("attempt=4")
                && line.contains(what)
        })
        .count()
}

/// Outage tests run one at a time: each counts the retries of its own outage in the log.
pub static OUTAGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every log line of this test binary so far, at debug level.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.get().cloned().unwrap_or_default().0.lock().unwrap()).into_owned()
}

fn init_logs() {
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buffer
    });
}

// ----- databases -----

fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestDatabase {
    pub url: String,
    postgres_name: Option<String>,
    _dir: tempfile::TempDir,
    /// Where the files service keeps content: beside the SQLite file (the default), or a
    /// directory of the test's own with Postgres (`FILES_STORE`).
    pub files_dir: std::path::PathBuf,
}

impl TestDatabase {
    async fn create(backend: Backend) -> TestDatabase {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => TestDatabase {
                url: format!(
                    "sqlite://{}",
                    dir.path().join("data/gemini-balance.db").display()
                ),
                postgres_name: None,
                files_dir: dir.path().join("data/files"),
                _dir: dir,
            },
            Backend::Postgres => {
                let name = format!("gbtest_{}", uuid::Uuid::new_v4().simple());
                let admin_url = postgres_admin_url();
                let mut admin = AsyncPgConnection::establish(&admin_url)
                    .await
                    .expect("Postgres must run on 127.0.0.1:5432 (or TEST_POSTGRES_URL)");
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(base, _)| base.to_owned())
                    .unwrap();
                TestDatabase {
                    url: format!("{base}/{name}"),
                    postgres_name: Some(name),
                    files_dir: dir.path().join("files"),
                    _dir: dir,
                }
            }
        }
    }

    async fn drop_database(&self) {
        if let Some(name) = &self.postgres_name
            && let Ok(mut admin) = AsyncPgConnection::establish(&postgres_admin_url()).await
        {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }

    /// Runs SQL statements (valid on both backends) directly on the database.
    pub async fn execute(&self, sql: &str) {
        match &self.postgres_name {
            Some(_) => {
                let mut conn = AsyncPgConnection::establish(&self.url).await.unwrap();
                conn.batch_execute(sql).await.unwrap();
            }
            None => {
                let mut conn = self.sqlite().await;
                conn.batch_execute(sql).await.unwrap();
            }
        }
    }

    async fn sqlite(
        &self,
    ) -> diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>
    {
        let path = self.url.trim_start_matches("sqlite://");
        diesel_async::sync_connection_wrapper::SyncConnectionWrapper::<diesel::SqliteConnection>::establish(path)
            .await
            .unwrap()
    }

    /// The one text column (named `text`) of a query's rows.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            text: String,
        }
        let rows: Vec<Row> = match &self.postgres_name {
            Some(_) => {
                let mut conn = AsyncPgConnection::establish(&self.url).await.unwrap();
                diesel::sql_query(sql).load(&mut conn).await.unwrap()
            }
            None => {
                let mut conn = self.sqlite().await;
                diesel::sql_query(sql).load(&mut conn).await.unwrap()
            }
        };
        rows.into_iter().map(|row| row.text).collect()
    }

    /// Every stored row of the config and logging tables, each as one line of text.
    pub async fn config_and_log_rows(&self) -> Vec<String> {
        let mut rows = Vec::new();
        for sql in [
            "SELECT key || ' ' || value || ' ' || COALESCE(env_value, '') AS text FROM configs",
            "SELECT error_message || ' ' || COALESCE(request_context, '') || ' ' || key_masked || ' ' || client || ' ' || error_type AS text FROM error_logs",
            "SELECT request_path || ' ' || COALESCE(request_params, '') || ' ' || key_masked || ' ' || client || ' ' || model_name AS text FROM request_logs",
        ] {
            rows.extend(self.texts(sql).await);
        }
        rows
    }

    /// The `keys` table's raw `key_value` column, as stored.
    pub async fn raw_key_values(&self) -> Vec<String> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        diesel::table! { keys (id) { id -> BigInt, key_value -> Text, } }
        match &self.postgres_name {
            Some(_) => {
                let mut conn = AsyncPgConnection::establish(&self.url).await.unwrap();
                keys::table
                    .select(keys::key_value)
                    .load(&mut conn)
                    .await
                    .unwrap()
            }
            None => {
                let path = self.url.trim_start_matches("sqlite://");
                let mut conn = diesel_async::sync_connection_wrapper::SyncConnectionWrapper::<
                    diesel::SqliteConnection,
                >::establish(path)
                .await
                .unwrap();
                keys::table
                    .select(keys::key_value)
                    .load(&mut conn)
                    .await
                    .unwrap()
            }
        }
    }
}

// ----- the app -----

pub struct TestAppBuilder {
    mode: Mode,
    backend: Backend,
    keys: Vec<String>,
    settings: HashMap<String, String>,
}

pub struct TestApp {
    pub mode: Mode,
    pub mock: MockGemini,
    pub db: TestDatabase,
    pub base_url: String,
    pub http: reqwest::Client,
    pub keys: Vec<String>,
    pub chat_addr: Option<SocketAddr>,
    pub keys_addr: Option<SocketAddr>,
    pub config_addr: Option<SocketAddr>,
    pub logging_addr: Option<SocketAddr>,
    pub files_addr: Option<SocketAddr>,
    settings: HashMap<String, String>,
    /// Each service's shutdown token and task, in the order they started.
    tasks: Vec<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
}

impl TestApp {
    pub fn builder(mode: Mode, backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            mode,
            backend,
            keys: vec![new_key(), new_key()],
            settings: HashMap::new(),
        }
    }
}

impl TestAppBuilder {
    /// The pool's keys (`API_KEYS`); two fresh ones by default.
    pub fn keys(mut self, keys: Vec<String>) -> Self {
        self.keys = keys;
        self
    }

    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.insert(name.to_owned(), value.to_owned());
        self
    }

    pub async fn spawn(self) -> TestApp {
        init_logs();
        let mock = MockGemini::start().await.unwrap();
        let db = TestDatabase::create(self.backend).await;
        let mut settings = HashMap::from([
            (
                "API_KEYS".to_owned(),
                serde_json::to_string(&self.keys).unwrap(),
            ),
            ("ALLOWED_TOKENS".to_owned(), CLIENT_TOKEN.to_owned()),
            ("AUTH_TOKEN".to_owned(), ADMIN_TOKEN.to_owned()),
            ("BASE_URL".to_owned(), mock.base_url()),
            ("DATABASE_URL".to_owned(), db.url.clone()),
            ("CHECK_INTERVAL_HOURS".to_owned(), "0".to_owned()),
            ("TIME_OUT".to_owned(), "10".to_owned()),
        ]);
        if self.backend == Backend::Postgres {
            settings.insert(
                "ENCRYPTION_KEY".into(),
                gb_runtime::secrets::KeyCipher::generate_base64(),
            );
            settings.insert("FILES_STORE".into(), db.files_dir.display().to_string());
        }
        settings.extend(self.settings);
        let mut app = TestApp {
            mode: self.mode,
            mock,
            db,
            base_url: String::new(),
            http: reqwest::Client::new(),
            keys: self.keys,
            chat_addr: None,
            keys_addr: None,
            config_addr: None,
            logging_addr: None,
            files_addr: None,
            settings,
            tasks: Vec::new(),
        };
        app.start().await;
        app
    }
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

impl TestApp {
    fn parsed_settings(&self) -> Settings {
        let settings = self.settings.clone();
        Settings::from_lookup(&|name| settings.get(name).cloned()).unwrap()
    }

    async fn start(&mut self) {
        let (gateway, gateway_addr) = bind().await;
        self.base_url = format!("http://{gateway_addr}");
        match self.mode {
            Mode::AllInOne => self.spawn_service(launcher::run_all_in_one, gateway),
            Mode::Microservices => {
                let (config, config_addr) = bind().await;
                let (logging, logging_addr) = bind().await;
                let (keys, keys_addr) = bind().await;
                let (files, files_addr) = bind().await;
                let (chat, chat_addr) = bind().await;
                for (name, addr) in [
                    ("CONFIG", config_addr),
                    ("LOGGING", logging_addr),
                    ("KEYS", keys_addr),
                    ("FILES", files_addr),
                    ("CHAT", chat_addr),
                ] {
                    self.settings
                        .insert(format!("{name}_URL"), format!("http://{addr}"));
                }
                self.keys_addr = Some(keys_addr);
                self.chat_addr = Some(chat_addr);
                self.config_addr = Some(config_addr);
                self.logging_addr = Some(logging_addr);
                self.files_addr = Some(files_addr);
                self.spawn_service(launcher::run_config, config);
                self.spawn_service(launcher::run_logging, logging);
                self.spawn_service(launcher::run_keys, keys);
                self.spawn_service(launcher::run_files, files);
                self.spawn_service(launcher::run_chat, chat);
                self.spawn_service(launcher::run_gateway, gateway);
            }
        }
        self.wait_until_serving().await;
    }

    /// Runs one of the launcher's entry points on `listener`, with this app's settings.
    fn spawn_service<Run, Running>(&mut self, run: Run, listener: TcpListener)
    where
        Run: FnOnce(Settings, TcpListener, CancellationToken) -> Running,
        Running: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let running = run(self.parsed_settings(), listener, shutdown.clone());
        self.tasks.push((shutdown, tokio::spawn(running)));
    }

    /// Whether every gRPC service of the microservice mode answers its health check.
    async fn grpc_services_serving(&self) -> bool {
        for addr in [
            self.config_addr,
            self.logging_addr,
            self.keys_addr,
            self.files_addr,
            self.chat_addr,
        ]
        .into_iter()
        .flatten()
        {
            let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
            else {
                return false;
            };
            let answer = tonic_health::pb::health_client::HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await;
            if !answer.is_ok_and(|answer| {
                answer.into_inner().status
                    == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            }) {
                return false;
            }
        }
        true
    }

    /// Waits until every service serves: the gateway answers, the chat service has the pool.
    async fn wait_until_serving(&mut self) {
        for _ in 0..600 {
            if let Some(index) = self.tasks.iter().position(|(_, task)| task.is_finished()) {
                let ended = self.tasks.remove(index).1.await;
                panic!("a service stopped while starting: {ended:?}");
            }
            if let Ok(response) = self
                .http
                .get(format!("{}/health", self.base_url))
                .send()
                .await
                && response.status().is_success()
                && self.admin_get("/keys").await.0 == 200
                && self.grpc_services_serving().await
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the gateway did not start");
    }

    /// Stops the services the way a rolling stop does, callers first (gateway, chat, then the
    /// services they report to), so that what they flush at shutdown finds its receiver.
    async fn stop_services(&mut self) {
        while let Some((shutdown, task)) = self.tasks.pop() {
            shutdown.cancel();
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("a service did not stop within 15s")
                .unwrap()
                .unwrap();
        }
    }

    /// In the microservice mode, stops one service (`Service::Logging` or `Service::Keys`),
    /// runs `outage` while it is down, and starts it again on the same address and database.
    pub async fn outage_of(&mut self, service: Service, outage: impl AsyncFnOnce(&TestApp)) {
        assert_eq!(
            self.mode,
            Mode::Microservices,
            "only split services stop alone"
        );
        // The order they started in: config, logging, keys, files, chat, gateway.
        let (index, addr, run): (
            usize,
            SocketAddr,
            fn(Settings, TcpListener, CancellationToken) -> _,
        ) = match service {
            Service::Logging => (
                1,
                self.logging_addr.unwrap(),
                |settings, listener, shutdown| {
                    Box::pin(launcher::run_logging(settings, listener, shutdown)) as ServiceRun
                },
            ),
            Service::Keys => (
                2,
                self.keys_addr.unwrap(),
                |settings, listener, shutdown| {
                    Box::pin(launcher::run_keys(settings, listener, shutdown)) as ServiceRun
                },
            ),
        };
        let (shutdown, task) = self.tasks.remove(index);
        shutdown.cancel();
        task.await.unwrap().unwrap();
        outage(self).await;
        let listener = TcpListener::bind(addr).await.unwrap();
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(run(self.parsed_settings(), listener, shutdown.clone()));
        self.tasks.insert(index, (shutdown, running));
        self.wait_until_serving().await;
    }

    /// In the microservice mode, starts a second chat replica and a gateway in front of it,
    /// sharing the keys, config and logging services; returns the second gateway's base URL.
    /// They stop with the rest.
    pub async fn spawn_second_front(&mut self) -> String {
        assert_eq!(self.mode, Mode::Microservices, "split services only");
        let (chat, chat_addr) = bind().await;
        let (gateway, gateway_addr) = bind().await;
        let mut settings = self.settings.clone();
        settings.insert("CHAT_URL".into(), format!("http://{chat_addr}"));
        let parsed = Settings::from_lookup(&|name| settings.get(name).cloned()).unwrap();
        // Stopped before the first services (the list is stopped from its end).
        let chat_shutdown = CancellationToken::new();
        let running: ServiceRun = Box::pin(launcher::run_chat(
            parsed.clone(),
            chat,
            chat_shutdown.clone(),
        ));
        self.tasks.push((chat_shutdown, tokio::spawn(running)));
        let gateway_shutdown = CancellationToken::new();
        let running: ServiceRun = Box::pin(launcher::run_gateway(
            parsed,
            gateway,
            gateway_shutdown.clone(),
        ));
        self.tasks.push((gateway_shutdown, tokio::spawn(running)));
        let base_url = format!("http://{gateway_addr}");
        for _ in 0..600 {
            if let Ok(response) = self.http.get(format!("{base_url}/health")).send().await
                && response.status().is_success()
            {
                return base_url;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the second gateway did not start");
    }

    /// Stops every service and starts them again on the same database.
    pub async fn restart(&mut self) {
        self.stop_services().await;
        self.start().await;
    }

    /// Stops the services and drops the test database.
    pub async fn stop(mut self) {
        self.stop_services().await;
        self.db.drop_database().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A Gemini-native POST with the client token; returns status and JSON body.
    pub async fn gemini_post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        status_and_json(self.gemini_send(path, body).await).await
    }

    async fn gemini_send(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.gemini_send_to(&self.base_url, CLIENT_TOKEN, path, body)
            .await
    }

    /// A Gemini-native POST to the gateway at `base` (this app's, or a second one) with
    /// `token` as `x-goog-api-key`.
    pub async fn gemini_send_to(
        &self,
        base: &str,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.http
            .post(format!("{base}{path}"))
            .header("x-goog-api-key", token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A Gemini-native POST that the gateway must refuse with 429: its `Retry-After` seconds
    /// and its body.
    pub async fn gemini_post_refused(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u64, serde_json::Value) {
        let response = self.gemini_send(path, body).await;
        assert_eq!(response.status().as_u16(), 429);
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        (retry_after, response.json().await.unwrap())
    }

    pub async fn generate(&self, text: &str) -> (u16, serde_json::Value) {
        self.gemini_post(
            "/v1beta/models/gemini-2.5-flash:generateContent",
            &hello(text),
        )
        .await
    }

    /// The raw SSE text of a stream.
    pub async fn stream_sse(&self, text: &str) -> (u16, String) {
        let response = self
            .http
            .post(self.url("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"))
            .header("x-goog-api-key", CLIENT_TOKEN)
            .json(&hello(text))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    pub async fn admin_get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        status_and_json(response).await
    }

    /// Changes a setting of the environment the services start with (next start).
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.settings.insert(name.to_owned(), value.to_owned());
    }

    pub async fn admin_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(body);
        }
        status_and_json(request.send().await.unwrap()).await
    }

    /// `PUT /configs/{name}` with `{"value": value}`; asserts success.
    pub async fn put_setting(&self, name: &str, value: serde_json::Value) {
        let (status, body) = self
            .admin_send(
                reqwest::Method::PUT,
                &format!("/configs/{name}"),
                Some(&serde_json::json!({ "value": value })),
            )
            .await;
        assert_eq!(status, 200, "{name}: {body}");
    }

    /// A setting as `GET /configs/{name}` shows it.
    pub async fn setting(&self, name: &str) -> serde_json::Value {
        let (status, body) = self.admin_get(&format!("/configs/{name}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until `check` holds (settings reach the services through a stream).
    pub async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.eventually_within(what, Duration::from_secs(5), check)
            .await
    }

    /// Waits until `check` holds, for at most `limit`.
    pub async fn eventually_within<F, Fut>(&self, what: &str, limit: Duration, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{what}: not within {limit:?}");
    }

    pub async fn admin_post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        status_and_json(response).await
    }

    /// The pool as the admin sees it, by key index in `self.keys`.
    pub async fn key_states(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.admin_get("/keys").await;
        assert_eq!(status, 200, "{body}");
        let listed = body["keys"].as_array().unwrap().clone();
        self.keys
            .iter()
            .map(|key| {
                let masked = gb_runtime::secrets::mask_key(key);
                listed
                    .iter()
                    .find(|entry| entry["key_value"] == masked.as_str())
                    .cloned()
                    .unwrap_or(serde_json::Value::Null)
            })
            .collect()
    }

    /// Waits until the admin view of key `index` satisfies `check` (outcomes arrive in batches).
    pub async fn wait_for_key(
        &self,
        index: usize,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        for _ in 0..200 {
            last = self.key_states().await[index].clone();
            if check(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("key {index} never reached the expected state; last seen: {last}");
    }

    /// How many upstream calls each key received.
    pub fn calls_per_key(&self) -> Vec<usize> {
        let calls = self.mock.calls();
        self.keys
            .iter()
            .map(|key| calls.iter().filter(|call| &call.key == key).count())
            .collect()
    }
}

/// An answer's status and JSON body (`Null` when it has none).
pub async fn status_and_json(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

pub fn hello(text: &str) -> serde_json::Value {
    serde_json::json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

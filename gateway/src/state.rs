//! What every route handler shares: the service clients, the token checks and the translation
//! settings (both kept current with the live settings), and the request-log shipper. No
//! business state.

use gb_proto::chat::Chat;
use gb_proto::config::v1::config_service_client::ConfigServiceClient;
use gb_proto::files::v1::files_service_client::FilesServiceClient;
use gb_proto::keys::v1::keys_service_client::KeysServiceClient;
use gb_proto::logging::v1::logging_service_client::LoggingServiceClient;
use gb_runtime::grpc::GrpcChannel;
use gb_runtime::live::{Live, LiveSettings};
use gb_runtime::log_records::LogShipper;
use gb_runtime::settings::Settings;
use gb_runtime::tasks::Tasks;

use crate::auth::Auth;
use crate::openai::media_fetch::MediaFetcher;

/// Settings of the translations the gateway does (speech, images, media URLs).
pub struct Translation {
    pub tts_model: String,
    pub tts_voice_name: String,
    pub tts_speed: String,
    pub create_image_model: String,
    pub show_search_link: bool,
    /// `ANTHROPIC_MODEL_MAP`: Claude model names → Gemini models.
    pub anthropic_models: gb_runtime::settings::ModelMap,
    /// `EMBEDDING_MODEL_MAP`: OpenAI embedding model names → Gemini embedding models.
    pub embedding_models: gb_runtime::settings::ModelMap,
    pub fake_stream_interval: Option<std::time::Duration>,
    pub media: MediaFetcher,
}

impl Translation {
    pub fn from_settings(settings: &Settings) -> Self {
        let settings = &settings.gateway;
        Translation {
            tts_model: settings.tts_model.clone(),
            tts_voice_name: settings.tts_voice_name.clone(),
            tts_speed: settings.tts_speed.clone(),
            create_image_model: settings.create_image_model.clone(),
            show_search_link: settings.show_search_link,
            anthropic_models: settings.anthropic_model_map.clone(),
            embedding_models: settings.embedding_model_map.clone(),
            fake_stream_interval: settings
                .fake_stream_enabled
                .then_some(settings.fake_stream_empty_data_interval.0),
            media: MediaFetcher::new(settings.fetch_private_urls),
        }
    }
}

/// The services the gateway fronts: the chat contract (the service itself in the same
/// process, else `chat_client::remote`), channels to the others.
pub struct Services {
    pub chat: Chat,
    pub keys: GrpcChannel,
    pub config: GrpcChannel,
    pub logging: GrpcChannel,
    pub files: GrpcChannel,
}

/// Shared by every handler; cloned per request and per middleware, so one `Arc` (cloning the
/// gRPC clients themselves would allocate for each of their boxed channels).
#[derive(Clone)]
pub struct GatewayState(std::sync::Arc<Shared>);

impl std::ops::Deref for GatewayState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub chat: Chat,
    pub keys: KeysServiceClient<GrpcChannel>,
    pub config: ConfigServiceClient<GrpcChannel>,
    pub logging: LoggingServiceClient<GrpcChannel>,
    pub files: FilesServiceClient<GrpcChannel>,
    pub auth: Live<Auth>,
    pub translation: Live<Translation>,
    pub logs: LogShipper,
    /// Owns the tasks handlers spawn (fake streams), waited for at shutdown.
    pub tasks: Tasks,
    /// How long a request body may take (`BODY_READ_TIMEOUT`, read at start).
    pub body_limits: crate::body::BodyLimits,
    /// The managed client tokens, as the keys service pushes them.
    pub managed_tokens: std::sync::Arc<crate::managed_tokens::ManagedTokens>,
    /// Fingerprints presented tokens (the server's secret, the same on every replica).
    pub names: gb_runtime::secrets::KeyCipher,
    /// The settings as they are now (`FILES_MAX_SIZE_MB`).
    pub settings: LiveSettings,
    /// The web console's own state: failed logins per address, the models list it offers.
    pub console: crate::console::ConsoleState,
}

impl GatewayState {
    pub fn new(
        services: Services,
        live: &LiveSettings,
        logs: LogShipper,
        tasks: &Tasks,
    ) -> anyhow::Result<Self> {
        const MAX_MESSAGE: usize = 64 * 1024 * 1024;
        // Callers are named under the server's secret (the same on every replica).
        let names = gb_runtime::secrets::resolve_cipher(&live.current())?;
        let keys = KeysServiceClient::new(services.keys);
        let logging =
            LoggingServiceClient::new(services.logging).max_decoding_message_size(MAX_MESSAGE);
        let managed_tokens = std::sync::Arc::new(crate::managed_tokens::ManagedTokens::default());
        tasks.spawn(crate::managed_tokens::follow(
            managed_tokens.clone(),
            keys.clone(),
            tasks.shutdown().clone(),
        ));
        tasks.spawn(crate::managed_tokens::follow_spending(
            managed_tokens.clone(),
            logging.clone(),
            tasks.shutdown().clone(),
        ));
        let auth_names = names.clone();
        Ok(GatewayState(std::sync::Arc::new(Shared {
            chat: services.chat,
            keys,
            config: ConfigServiceClient::new(services.config),
            logging,
            files: FilesServiceClient::new(services.files).max_decoding_message_size(MAX_MESSAGE),
            auth: live.derive("client tokens", move |settings| {
                Ok(Auth::from_settings(settings, auth_names.clone()))
            })?,
            translation: live.derive("translation settings", |settings| {
                Ok(Translation::from_settings(settings))
            })?,
            logs,
            tasks: tasks.clone(),
            body_limits: crate::body::BodyLimits {
                read_timeout: live.current().gateway.body_read_timeout.0,
                tasks: tasks.clone(),
            },
            managed_tokens,
            names,
            settings: live.clone(),
            console: Default::default(),
        })))
    }
}

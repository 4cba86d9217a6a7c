//! The settings' descriptions in Simplified Chinese, for the settings page (the English ones
//! are the declarations' own, `gb_runtime::settings::DECLARATIONS`). A test holds this table to
//! the declarations: a new setting without its line fails it.

/// A setting's description in Chinese.
pub fn about_zh(name: &str) -> Option<&'static str> {
    Some(match name {
        "AUTH_TOKEN" => {
            "管理令牌，用于管理接口（以及拆分部署的服务之间）。与 gemini-balance 不同，它从不退回使用客户端令牌：未设置时管理接口关闭。"
        }
        "DATABASE_URL" => "`postgres://…`、`sqlite://路径` 或 SQLite 文件路径。",
        "ENCRYPTION_KEY" => {
            "32 字节，base64（`openssl rand -base64 32`）；未设置时在 SQLite 文件旁生成，使用 Postgres 时必须设置。"
        }
        "LOG_LEVEL" => "`tracing` 过滤器（`info`、`debug`、`gb_chat=debug,info`）。",
        "LOG_FORMAT" => "`text` 或 `json`。",
        "GATEWAY_ADDR" => "HTTP 监听地址。",
        "CHAT_ADDR" => "chat 服务的 gRPC 监听地址（拆分模式）。",
        "KEYS_ADDR" => "keys 服务的 gRPC 监听地址（拆分模式）。",
        "CONFIG_ADDR" => "config 服务的 gRPC 监听地址（拆分模式）。",
        "LOGGING_ADDR" => "logging 服务的 gRPC 监听地址（拆分模式）。",
        "FILES_ADDR" => "files 服务的 gRPC 监听地址（拆分模式）。",
        "CHAT_URL" => "拆分部署中其他服务访问 chat 服务的地址（默认：本机，`CHAT_ADDR` 的端口）。",
        "KEYS_URL" => "拆分部署中其他服务访问 keys 服务的地址（默认：本机，`KEYS_ADDR` 的端口）。",
        "CONFIG_URL" => {
            "拆分部署中其他服务访问 config 服务的地址（默认：本机，`CONFIG_ADDR` 的端口）。"
        }
        "LOGGING_URL" => {
            "拆分部署中其他服务访问 logging 服务的地址（默认：本机，`LOGGING_ADDR` 的端口）。"
        }
        "FILES_URL" => {
            "拆分部署中其他服务访问 files 服务的地址（默认：本机，`FILES_ADDR` 的端口）。"
        }
        "METRICS_ADDR" => "`/metrics` 的监听地址（每个进程各自一个）。",
        "DRAIN_TIMEOUT" => "收到 SIGTERM 后，进行中的请求和流可继续完成的秒数。",
        "API_KEYS" => {
            "启动时导入池中的 Gemini 密钥（已存在的跳过）。运行中通过接口修改会添加新出现的密钥、移除消失的密钥；启动时只添加：删除请用 `DELETE /keys/{id}`。"
        }
        "MAX_FAILURES" => "连续临时失败多少次后禁用密钥。",
        "TEST_MODEL" => "检查密钥时使用的模型。",
        "CHECK_INTERVAL_HOURS" => "重新检查失败密钥的间隔（小时，可为小数）；`0` 关闭。",
        "BASE_URL" => "上游地址。",
        "TIME_OUT" => "上游超时秒数（整个调用；流式为每次读取）。",
        "PROXIES" => "`http://`、`https://` 或 `socks5://` 代理，每个密钥固定使用其中一个。",
        "CUSTOM_HEADERS" => "添加到每个上游请求的请求头（JSON 对象）。",
        "MAX_RETRIES" => "每个请求的最多尝试次数（每次换一个密钥）。",
        "FILTERED_MODELS" => "从模型列表中隐藏并直接拒绝（404，不调用上游）的模型。",
        "CHAT_MODEL" => "简易聊天接口和未指定模型的 `Chat` RPC 使用的模型。",
        "SEARCH_MODELS" => "提供 `-search` 变体（Google 搜索增强）的模型。",
        "IMAGE_MODELS" => "提供 `-image` 变体（文字和图片输出）的模型。",
        "THINKING_MODELS" => "提供 `-non-thinking` 变体的模型（思考预算 0；2.5 Pro 为 128）。",
        "THINKING_BUDGET_MAP" => "`{\"模型\": 预算}`：客户端未设置思考配置时的思考预算。",
        "SHOW_THINKING_PROCESS" => {
            "使用映射中的预算时请求思考过程（OpenAI 接口中的 `reasoning_content`）。"
        }
        "SAFETY_SETTINGS" => {
            "`[{\"category\",\"threshold\"}]`，请求未携带时使用（`[]`：使用 Google 默认）。"
        }
        "TOOLS_CODE_EXECUTION_ENABLED" => "为纯文本请求添加代码执行工具。",
        "URL_CONTEXT_ENABLED" => "为 `URL_CONTEXT_MODELS` 添加 URL 上下文工具。",
        "URL_CONTEXT_MODELS" => "添加 URL 上下文工具的模型。",
        "PAID_KEY" => "Imagen（`images/generations`）使用的密钥，设置后代替密钥池。",
        "ERROR_LOG_RECORD_REQUEST_BODY" => {
            "在错误日志中保存请求内容（发往上游的内容，最多 256 KiB）。"
        }
        "QUOTA_RESET_TIMEZONE" => {
            "Google 每日配额在该时区的午夜重置：用完某模型每日配额的密钥（429 的 `QuotaFailure` 指明按天配额）对该模型休息到那时。"
        }
        "KEY_MODEL_LIMITS" => {
            "Google 对每个密钥每个模型的限额：`{\"通配符\": {\"rpm\", \"tpm\", \"rpd\"}}`，以 `type:` 开头的通配符只用于该 `key_type` 的密钥（优先），最长匹配生效，0 表示不使用。达到限额的密钥对该模型跳过；全部达到时客户端直接得到 429 和 `Retry-After`，不调用上游。"
        }
        "ALLOWED_TOKENS" => {
            "客户端令牌，通过 `x-goog-api-key`、`?key=` 或 `Authorization: Bearer` 传递。"
        }
        "SHOW_SEARCH_LINK" => "在 OpenAI 接口的 `-search` 回答后附上 Google 搜索来源。",
        "FAKE_STREAM_ENABLED" => "用一次普通上游调用回答 OpenAI 流式请求，期间发送空数据块。",
        "FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS" => "假流式中空数据块之间的秒数。",
        "ANTHROPIC_MODEL_MAP" => {
            "Anthropic 客户端的模型名（通配符，不区分大小写，最长匹配生效）→ 提供服务的 Gemini 模型；不匹配的名称原样发送。"
        }
        "EMBEDDING_MODEL_MAP" => {
            "OpenAI 向量模型名（通配符，同 `ANTHROPIC_MODEL_MAP`）→ `embeddings` 使用的 Gemini 向量模型；不匹配的名称原样发送。"
        }
        "TTS_MODEL" => "`audio/speech` 使用的模型。",
        "TTS_VOICE_NAME" => "请求的声音不是 Gemini 声音时使用的声音。",
        "TTS_SPEED" => "`audio/speech` 的默认语速。",
        "CREATE_IMAGE_MODEL" => "Imagen 模型。",
        "FETCH_PRIVATE_URLS" => {
            "允许 `image_url` 指向本机或内网地址（关闭：防止通过网关进行服务端请求伪造）。"
        }
        "HEADER_READ_TIMEOUT" => {
            "客户端发送请求头的秒数，也是空闲长连接保持的秒数（过慢或无响应的客户端会被断开）。"
        }
        "BODY_READ_TIMEOUT" => "客户端发送完整请求体的秒数。",
        "ADMIN_SESSION_EXPIRE" => "控制台会话在登录后的有效秒数（重新登录开始新会话）。",
        "MAX_CONNECTIONS" => {
            "最多打开的客户端连接数；超过后新连接立即被拒绝（默认：根据打开文件数上限，启动时会提升到硬上限）。"
        }
        "FILES_STORE" => {
            "文件内容的存放位置：目录（默认：SQLite 文件旁的 `files`，或 `data/files`），或 `s3://bucket/prefix`（凭据、区域和 `AWS_ENDPOINT_URL` 来自标准 `AWS_*` 变量），供多个副本共享。"
        }
        "FILES_MAX_SIZE_MB" => {
            "单个文件的最大大小（MB；Google 自身限制为每个文件 2 GB）；超过时返回 413，不保存任何内容。"
        }
        "FILES_CLEANUP_ENABLED" => {
            "每隔 `FILES_CLEANUP_INTERVAL_HOURS` 忘记（并在 Google 删除）过期的上游副本，并清除超过一天未完成的上传会话。"
        }
        "FILES_CLEANUP_INTERVAL_HOURS" => "两次清理之间的小时数。",
        "FILES_USER_ISOLATION_ENABLED" => {
            "每个客户端只能看到和使用自己上传的文件（管理令牌可见全部）；关闭：所有客户端可见所有文件。"
        }
        "AUTO_DELETE_ERROR_LOGS_ENABLED" => {
            "删除早于 `AUTO_DELETE_ERROR_LOGS_DAYS` 的错误日志（每小时一次，修改这些配置时立即执行）。"
        }
        "AUTO_DELETE_ERROR_LOGS_DAYS" => "错误日志保留天数。",
        "AUTO_DELETE_REQUEST_LOGS_ENABLED" => {
            "删除早于 `AUTO_DELETE_REQUEST_LOGS_DAYS` 的请求日志。"
        }
        "AUTO_DELETE_REQUEST_LOGS_DAYS" => "请求日志保留天数。",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_declared_setting_has_its_chinese_description() {
        let missing: Vec<&str> = gb_runtime::settings::DECLARATIONS
            .iter()
            .map(|declaration| declaration.name)
            .filter(|name| super::about_zh(name).is_none())
            .collect();
        assert!(missing.is_empty(), "no Chinese description: {missing:?}");
    }
}

//! Every string of the console, in English and Simplified Chinese: one line each, so that a
//! string cannot exist in one language only. The language comes from `?lang=` (kept in a
//! cookie), else from `Accept-Language`.

use axum::http::HeaderMap;

macro_rules! strings {
    ($($field:ident: $en:literal, $zh:literal;)*) => {
        /// The console's strings in one language.
        #[derive(serde::Serialize)]
        pub struct Strings {
            $(pub $field: &'static str,)*
        }

        pub static EN: Strings = Strings { $($field: $en,)* };
        pub static ZH: Strings = Strings { $($field: $zh,)* };
    };
}

strings! {
    other_language: "中文", "English";
    nav_keys: "Keys", "密钥";
    nav_config: "Settings", "配置";
    nav_logs: "Logs", "日志";
    nav_stats: "Statistics", "统计";
    nav_files: "Files", "文件";
    logout: "Log out", "退出登录";
    login_title: "Log in", "登录";
    login_hint: "Enter the admin token (AUTH_TOKEN) to open the console.", "输入管理令牌（AUTH_TOKEN）以进入控制台。";
    login_token: "Admin token", "管理令牌";
    login_button: "Log in", "登录";
    login_wrong: "That is not the admin token.", "管理令牌不正确。";
    login_limited: "Too many failed logins from this address: try again in a few minutes.", "此地址登录失败次数过多，请几分钟后再试。";
    login_closed: "The console is closed: AUTH_TOKEN is not set.", "控制台未开放：未设置 AUTH_TOKEN。";
    login_expired_form: "The login form expired: please try again.", "登录表单已过期，请重试。";
    status: "Status", "状态";
    status_active: "Active", "可用";
    status_cooling: "Cooling down", "冷却中";
    status_disabled: "Disabled", "已禁用";
    all_statuses: "All statuses", "全部状态";
    calls_minute: "Calls, last minute", "最近 1 分钟调用";
    calls_hour: "Calls, last hour", "最近 1 小时调用";
    calls_day: "Calls, last 24 h", "最近 24 小时调用";
    calls_month: "Calls, this month", "本月调用";
    success: "success", "成功";
    failure: "failure", "失败";
    trend: "Calls over time", "调用趋势";
    attention_keys: "Keys to watch", "需关注的密钥";
    attention_hint: "Most 429 answers in the last 24 hours.", "最近 24 小时 429 最多的密钥。";
    none: "None.", "无。";
    add_keys: "Add keys", "添加密钥";
    add_hint: "Paste any text: every Gemini key in it (AIzaSy…) is added.", "粘贴任意文本：其中所有 Gemini 密钥（AIzaSy…）都会被添加。";
    add_button: "Add", "添加";
    add_result: "Keys added", "添加结果";
    add_found: "found", "找到";
    add_added: "added", "已添加";
    add_duplicates: "repeated in the text", "文本中重复";
    add_existing: "already stored", "已存在";
    add_failed: "failed", "失败";
    search_keys: "Search key (masked form, id or full value)", "搜索密钥（掩码、编号或完整值）";
    min_failures: "Failures ≥", "失败次数 ≥";
    per_page: "Per page", "每页";
    apply: "Apply", "应用";
    selected: "selected", "已选";
    select_all: "Select all on this page", "全选本页";
    verify: "Verify", "验证";
    reset: "Reset", "重置";
    delete: "Delete", "删除";
    key: "Key", "密钥";
    failures: "Failures", "失败次数";
    cooldown_left: "Cooldown left", "剩余冷却";
    last_error: "Last error", "最近错误";
    last_used: "Last used", "最近使用";
    calls: "Calls", "调用";
    tokens: "Tokens", "Token";
    tokens_24h: "Tokens (24 h)", "Token（24 小时）";
    actions: "Actions", "操作";
    usage_24h: "24 h usage", "24 小时用量";
    no_keys: "No key matches.", "没有匹配的密钥。";
    total: "Total", "共";
    page: "Page", "页";
    previous: "Previous", "上一页";
    next: "Next", "下一页";
    go_to_page: "Go to page", "跳转到页";
    go: "Go", "跳转";
    model: "Model", "模型";
    close: "Close", "关闭";
    confirm_delete_keys: "Delete the selected keys?", "确定删除所选密钥？";
    confirm_delete_key: "Delete this key?", "确定删除此密钥？";
    verify_ok: "valid", "有效";
    verify_failed: "invalid", "无效";
    done: "Done", "完成";
    failed: "Failed", "失败";
    tab_api: "API", "API";
    tab_model: "Models", "模型";
    tab_tts: "TTS", "语音";
    tab_image: "Images", "图像";
    tab_stream: "Streaming", "流式";
    tab_logging: "Logging", "日志";
    tab_other: "Other", "其他";
    source: "Source", "来源";
    source_default: "default", "默认";
    source_environment: "environment", "环境变量";
    source_api: "set here", "此处设置";
    read_only: "read-only (environment only)", "只读（仅环境变量）";
    secret: "secret", "机密";
    not_applied: "Not in force:", "未生效：";
    save: "Save", "保存";
    saved: "Saved and applied.", "已保存并生效。";
    reset_setting: "Reset to environment/default", "恢复为环境变量/默认值";
    reset_all: "Reset all settings", "全部恢复";
    confirm_reset_all: "Reset every setting to its environment value or default?", "确定将所有配置恢复为环境变量或默认值？";
    add_item: "Add", "添加";
    remove_item: "Remove", "移除";
    add_entry: "Add entry", "添加条目";
    pick_model: "Pick a model", "选择模型";
    generate_token: "Generate token", "生成令牌";
    check_proxies: "Check proxies", "检测代理";
    proxy_reachable: "reaches the upstream", "可连接上游";
    proxy_unreachable: "unreachable", "无法连接";
    secret_kept: "Secret: the masked value is kept unless you type a new one.", "密钥：不修改时保留原值。";
    invalid_json: "Not valid JSON", "不是有效的 JSON";
    error_logs: "Error logs", "错误日志";
    request_logs: "Request logs", "请求日志";
    search_text: "Text in the error", "错误内容";
    status_code: "Status code", "状态码";
    from: "From", "从";
    to: "To", "到";
    time: "Time", "时间";
    error_type: "Type", "类型";
    message: "Message", "信息";
    details: "Details", "详情";
    copy: "Copy", "复制";
    copied: "Copied.", "已复制。";
    delete_selected: "Delete selected", "删除所选";
    clear_all: "Clear all", "全部清空";
    confirm_clear_all: "Delete every error log? This cannot be undone.", "确定删除所有错误日志？此操作无法撤销。";
    confirm_delete_logs: "Delete the selected logs?", "确定删除所选日志？";
    no_logs: "No log matches.", "没有匹配的日志。";
    error_body: "Error body", "错误内容";
    request_body: "Request body", "请求内容";
    not_recorded: "Not recorded.", "未记录。";
    client: "Client", "客户端";
    path: "Path", "路径";
    attempts: "Attempts", "尝试次数";
    copies_at_google: "Copies at Google", "Google 副本";
    error_logs_of_call: "Its error logs", "相关错误日志";
    latency: "Latency", "延迟";
    period: "Period", "时段";
    calls_and_errors: "Calls and failures", "调用与失败";
    per_minute: "per minute (24 h)", "按分钟（24 小时）";
    per_hour: "per hour (7 days)", "按小时（7 天）";
    per_day: "per day (30 days)", "按天（30 天）";
    tokens_per_key: "Tokens per day, per key", "每日 Token（按密钥）";
    tokens_per_client: "Tokens per day, per client token", "每日 Token（按客户端令牌）";
    latency_percentiles: "Latency of upstream attempts (24 h)", "上游请求延迟（24 小时）";
    no_data: "No data yet.", "暂无数据。";
    files_title: "Files", "文件";
    upload: "Upload", "上传";
    file_name: "Name", "名称";
    mime_type: "Type", "类型";
    size: "Size", "大小";
    created: "Created", "创建时间";
    expires: "Expires", "过期时间";
    owner: "Owner", "所有者";
    download: "Download", "下载";
    confirm_delete_file: "Delete this file?", "确定删除此文件？";
    no_files: "No file yet.", "暂无文件。";
    csrf_refused: "The page's security token is missing or wrong: reload the page.", "页面安全令牌缺失或错误，请刷新页面。";
    session_over: "Your session has ended: log in again.", "会话已结束，请重新登录。";
}

/// The language of a request: `?lang=` first, then the `gb_lang` cookie, then the first
/// `Accept-Language` that names English or Chinese; English otherwise.
pub fn language(headers: &HeaderMap, query: Option<&str>) -> &'static str {
    let asked = query.and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "lang")
            .map(|(_, value)| value.into_owned())
    });
    if let Some(asked) = asked {
        return normalize(&asked);
    }
    if let Some(saved) = super::session::cookie(headers, "gb_lang") {
        return normalize(saved);
    }
    let accept = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    for range in accept.split(',') {
        let tag = range
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if tag.starts_with("zh") {
            return "zh-CN";
        }
        if tag.starts_with("en") {
            return "en";
        }
    }
    "en"
}

fn normalize(tag: &str) -> &'static str {
    if tag.to_ascii_lowercase().starts_with("zh") {
        "zh-CN"
    } else {
        "en"
    }
}

pub fn strings(lang: &str) -> &'static Strings {
    if lang == "zh-CN" { &ZH } else { &EN }
}

/// The strings as JSON for the pages' scripts, safe inside a `<script type="application/json">`.
pub fn as_json(strings: &Strings) -> String {
    serde_json::to_string(strings)
        .unwrap_or_default()
        .replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = value.parse() {
            headers.insert(axum::http::header::ACCEPT_LANGUAGE, value);
        }
        headers
    }

    #[test]
    fn the_language_follows_the_query_then_the_cookie_then_accept_language() {
        assert_eq!(language(&accept("zh-CN,zh;q=0.9,en;q=0.8"), None), "zh-CN");
        assert_eq!(
            language(&accept("fr-FR, en-US;q=0.8, zh;q=0.5"), None),
            "en"
        );
        assert_eq!(language(&accept("de"), None), "en");
        assert_eq!(language(&accept("zh-TW"), Some("lang=en")), "en");
        let mut headers = accept("en");
        if let Ok(value) = "gb_lang=zh-CN".parse() {
            headers.insert(axum::http::header::COOKIE, value);
        }
        assert_eq!(language(&headers, None), "zh-CN");
    }

    #[test]
    fn every_string_differs_between_the_languages_where_it_should() {
        let en = serde_json::to_value(&EN).unwrap_or_default();
        let zh = serde_json::to_value(&ZH).unwrap_or_default();
        let same: Vec<&String> = en
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, value)| zh.get(name.as_str()) == Some(value))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(same, ["tab_api"], "untranslated strings");
        assert!(!as_json(&EN).contains('<'));
    }
}

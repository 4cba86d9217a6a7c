//! The `error_logs` and `request_logs` tables, as both migrations create them.

diesel::table! {
    error_logs (id) {
        id -> BigInt,
        error_message -> Text,
        error_time -> Timestamp,
        request_context -> Nullable<Text>,
        key_id -> BigInt,
        key_masked -> Text,
        model_name -> Text,
        error_type -> Text,
        error_class -> Text,
        error_code -> Integer,
        client -> Text,
    }
}

diesel::table! {
    request_logs (id) {
        id -> BigInt,
        request_time -> Timestamp,
        request_method -> Text,
        request_path -> Text,
        request_params -> Nullable<Text>,
        kind -> Text,
        model_name -> Text,
        key_id -> BigInt,
        key_masked -> Text,
        status_code -> Integer,
        is_success -> Bool,
        latency_ms -> Integer,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        client -> Text,
        outcome -> Text,
    }
}

//! The `error_logs`, `request_logs` and `call_rollups` tables, as both migrations create them.

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
        latency_ms -> Integer,
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
        attempts -> Integer,
        client_label -> Text,
    }
}

diesel::table! {
    call_rollups (width_s, bucket_ms, key_id, key_masked, model_name, client, status_code, outcome) {
        width_s -> Integer,
        bucket_ms -> BigInt,
        key_id -> BigInt,
        key_masked -> Text,
        model_name -> Text,
        client -> Text,
        status_code -> Integer,
        outcome -> Text,
        calls -> BigInt,
        successes -> BigInt,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        latency_ms_sum -> BigInt,
        latency_le_100 -> BigInt,
        latency_le_300 -> BigInt,
        latency_le_1000 -> BigInt,
        latency_le_3000 -> BigInt,
        latency_le_10000 -> BigInt,
        latency_le_30000 -> BigInt,
        latency_le_100000 -> BigInt,
        latency_over -> BigInt,
    }
}

diesel::table! {
    responses (id) {
        id -> Text,
        client -> Text,
        created_at -> Timestamp,
        response -> Text,
        contents -> Text,
    }
}

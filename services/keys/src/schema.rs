//! The `keys` and `client_tokens` tables, as both migrations create them.

diesel::table! {
    keys (id) {
        id -> BigInt,
        key_value -> Text,
        key_hash -> Text,
        key_type -> Text,
        create_time -> Timestamp,
        status -> Text,
        failure_count -> Integer,
        cooldown_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        last_used -> Nullable<Timestamp>,
        success_count -> BigInt,
        failure_total -> BigInt,
        model_cooldowns -> Text,
    }
}

diesel::table! {
    client_tokens (id) {
        id -> BigInt,
        name -> Text,
        token_hash -> Text,
        masked -> Text,
        caller -> Text,
        models -> Text,
        rpm -> Nullable<BigInt>,
        tpm -> Nullable<BigInt>,
        daily_token_budget -> Nullable<BigInt>,
        monthly_token_budget -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
        enabled -> Bool,
        created_at -> BigInt,
    }
}

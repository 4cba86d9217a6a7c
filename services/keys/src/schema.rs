//! The `keys` table, as both migrations create it.

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

//! The `configs` table, as both migrations create it.

diesel::table! {
    configs (id) {
        id -> BigInt,
        key -> Text,
        value -> Text,
        env_value -> Nullable<Text>,
        source -> Text,
        updated_at -> Timestamp,
    }
}

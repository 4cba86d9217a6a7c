//! The `files`, `file_upstream_copies` and `file_upload_sessions` tables, as both migrations
//! create them.

diesel::table! {
    files (id) {
        id -> BigInt,
        filename -> Text,
        filesize -> BigInt,
        filetype -> Text,
        upload_time -> BigInt,
        sha256 -> Text,
        owner -> Text,
        purpose -> Text,
        display_name -> Text,
        location -> Text,
    }
}

diesel::table! {
    file_upstream_copies (file_id, key_id) {
        file_id -> BigInt,
        key_id -> BigInt,
        name -> Text,
        uri -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    file_upload_sessions (id) {
        id -> Text,
        owner -> Text,
        filename -> Text,
        filetype -> Text,
        purpose -> Text,
        display_name -> Text,
        declared_size -> BigInt,
        received -> BigInt,
        parts -> Integer,
        state -> Text,
        file_id -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(files, file_upstream_copies);

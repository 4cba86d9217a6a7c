-- Files kept by the gateway: the design's columns (id, filename, filesize, filetype,
-- upload_time) and what the three APIs need. owner is the client's name as the request log
-- gives it (never its token); location is the object's path in the store; times are Unix
-- milliseconds.
CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    filename TEXT NOT NULL,
    filesize BIGINT NOT NULL,
    filetype TEXT NOT NULL,
    upload_time BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    owner TEXT NOT NULL,
    purpose TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL
);
CREATE INDEX files_owner_id ON files (owner, id);

-- A file's copies at Google, one per key that uploaded it (a Gemini file belongs to the key's
-- project); forgotten past their expiry.
CREATE TABLE file_upstream_copies (
    file_id BIGINT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    key_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    uri TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (file_id, key_id)
);

-- Google's resumable uploads in progress: the content so far is kept in the store as one
-- object per chunk (parts), joined into the file when the last chunk arrives.
CREATE TABLE file_upload_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    filetype TEXT NOT NULL,
    purpose TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    declared_size BIGINT NOT NULL,
    received BIGINT NOT NULL DEFAULT 0,
    parts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'open',
    file_id BIGINT NULL,
    created_at BIGINT NOT NULL
);

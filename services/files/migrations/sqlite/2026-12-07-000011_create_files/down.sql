DROP TABLE file_upload_sessions;
DROP TABLE file_upstream_copies;
DROP TABLE files;

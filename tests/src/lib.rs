//! Test support for gemini-balance: a faithful mock of the Gemini API ([`mock_gemini`]), run
//! as its own HTTP server by the end-to-end tests and by the `mock-gemini` binary that the
//! Python SDK tests start.

pub mod mock_files;
pub mod mock_gemini;
pub mod mock_quotas;

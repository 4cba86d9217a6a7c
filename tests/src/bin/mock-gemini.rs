//! The mock Gemini API as a process, for tests written in other languages.
//! Usage: `mock-gemini 127.0.0.1:PORT`; control it over `/_mock/…`.

use gb_tests::mock_gemini::MockGemini;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8089".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let mock = MockGemini::start_on(listener).await?;
    eprintln!("mock-gemini listening on {}", mock.addr);
    tokio::signal::ctrl_c().await?;
    Ok(())
}

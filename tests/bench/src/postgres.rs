//! A database of the bench's own on the PostgreSQL server the tests use (`TEST_POSTGRES_URL`,
//! else the local one), created and dropped with `psql`.

use tokio::process::Command;

/// The server's admin database URL.
pub fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A key for the values the split services encrypt (32 bytes, base64).
pub const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

pub struct BenchDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl BenchDatabase {
    /// `gb_bench_{pid}_{purpose}` on the server of `admin`.
    pub async fn create(admin: &str, purpose: &str) -> anyhow::Result<Self> {
        let name = format!("gb_bench_{}_{purpose}", std::process::id());
        let created = Command::new("psql")
            .args([admin, "-qc", &format!("CREATE DATABASE {name}")])
            .status()
            .await?;
        anyhow::ensure!(
            created.success(),
            "psql could not create a database on {admin}"
        );
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => anyhow::bail!("{admin}: not a postgres:// URL"),
        };
        Ok(BenchDatabase {
            admin: admin.to_owned(),
            name,
            url,
        })
    }

    /// Drops it (its connections closed first).
    pub async fn drop_database(self) {
        let _ = Command::new("psql")
            .args([
                self.admin.as_str(),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .status()
            .await;
    }
}

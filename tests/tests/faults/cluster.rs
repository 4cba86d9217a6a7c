//! The pieces a fault run kills: the real `gemini-balance` binary's processes, and a
//! PostgreSQL cluster of the run's own (so that restarting it touches nothing else).

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `gemini-balance` binary: `GB_BIN_DIR` (set by `make faults`), else the one built beside
/// this test.
pub fn binary() -> PathBuf {
    let dir = std::env::var_os("GB_BIN_DIR").map_or_else(
        || {
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().to_path_buf()
        },
        PathBuf::from,
    );
    let binary = dir.join("gemini-balance");
    assert!(
        binary.exists(),
        "{} is missing: `make faults` builds it",
        binary.display()
    );
    binary
}

/// A port free now on 127.0.0.1 (the process that takes it binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `port` accepts connections, for at most `limit`.
pub async fn accepting(port: u16, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// One process of the binary (`args` empty: all-in-one), its output kept in a file.
pub struct Process {
    pub name: &'static str,
    args: Vec<&'static str>,
    env: HashMap<String, String>,
    log: PathBuf,
    child: Option<Child>,
    /// The port that says it is up.
    pub port: u16,
}

impl Process {
    pub fn new(
        name: &'static str,
        args: &[&'static str],
        env: HashMap<String, String>,
        port: u16,
        logs: &Path,
    ) -> Self {
        Process {
            name,
            args: args.to_vec(),
            env,
            log: logs.join(format!("{name}.log")),
            child: None,
            port,
        }
    }

    /// Starts it and waits for its port.
    pub async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(binary())
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            accepting(self.port, Duration::from_secs(30)).await,
            "{} did not open port {}:\n{}",
            self.name,
            self.port,
            self.log_tail()
        );
    }

    /// `kill -9`, and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and waits for it to exit (a normal stop, at the end of a run).
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether this process runs as root, whom PostgreSQL refuses to run as.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next().map(|uid| uid == "0"))
        .unwrap_or(false)
}

/// A PostgreSQL program, run as the `postgres` user when this test runs as root.
fn postgres_command(program: &str) -> Command {
    let bin = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
        .filter(|bin| bin.join(program).exists());
    let program = bin.map_or_else(|| PathBuf::from(program), |bin| bin.join(program));
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A cluster in a directory of its own, on a port of its own, trust auth, fsync off (a
/// restart of the server is what is tested, not a crash of the machine).
pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
    server: Option<Child>,
}

impl Postgres {
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gb-faults-pg")
            .tempdir()
            .unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let output = postgres_command("initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(dir.path().join("data"))
            .output()
            .expect("initdb runs (Debian's postgresql package)");
        assert!(
            output.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut postgres = Postgres {
            dir,
            port: free_port(),
            server: None,
        };
        postgres.start_server().await;
        let status = postgres_command("createdb")
            .args(["-h", "127.0.0.1", "-p", &postgres.port.to_string()])
            .args(["-U", "postgres", "gb"])
            .status()
            .unwrap();
        assert!(status.success(), "createdb");
        postgres
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/gb", self.port)
    }

    pub async fn start_server(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let server = postgres_command("postgres")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.server = Some(server);
        for _ in 0..300 {
            let ready = postgres_command("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the test's PostgreSQL did not start");
    }

    /// A fast shutdown (what `pg_ctl restart -m fast` does first): sessions are cut.
    pub fn stop_server(&mut self) {
        let status = postgres_command("pg_ctl")
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(self.dir.path().join("data"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl stop");
        if let Some(mut server) = self.server.take() {
            let _ = server.wait();
        }
    }

    /// One number from SQL.
    pub fn count(&self, sql: &str) -> i64 {
        let output = postgres_command("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "gb", "-tAc", sql])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sql}: {text} {}", String::from_utf8_lossy(&output.stderr)))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.server.is_some() {
            self.stop_server();
        }
    }
}

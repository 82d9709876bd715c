//! [`DevServer`]: `tessera dev`, the one-process cluster a new user starts first, run the way a
//! person runs it: start it, wait for its ready line on stdout
//! (`Tessera is ready: psql -h HOST -p PORT -U tessera`), connect, press Ctrl-C (SIGINT).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::binaries::tessera_bin;
use crate::net::free_local_addr;
use crate::process::{indent, ManagedProcess, Signal};

/// How long `tessera dev` may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `tessera dev` process.
pub struct DevServer {
    process: ManagedProcess,
    ready_line: String,
    addr: SocketAddr,
    /// Lines printed on stdout, read by a thread so the pipe never fills up.
    stdout_lines: mpsc::UnboundedReceiver<String>,
    stdout_seen: Vec<String>,
    /// Where the course's HTTP API is served.
    http: SocketAddr,
}

impl DevServer {
    /// Runs `tessera dev --data-dir DIR/data --listen LISTEN --nodes NODES`, logging stderr to
    /// `DIR/dev.log`, and waits for the ready line. Fails if the process dies first, prints no
    /// ready line in time, or announces another port than `listen`'s.
    pub async fn start(dir: &Path, listen: SocketAddr, nodes: usize) -> Result<DevServer, String> {
        DevServer::start_with(dir, listen, nodes, &[]).await
    }

    /// [`DevServer::start`] with more flags (`--tls`).
    pub async fn start_with(dir: &Path, listen: SocketAddr, nodes: usize, flags: &[&str]) -> Result<DevServer, String> {
        let mut args: Vec<OsString> = vec!["dev".into(), "--data-dir".into(), dir.join("data").into_os_string()];
        args.extend(flags.iter().map(OsString::from));
        let http = free_local_addr();
        args.extend([
            "--listen".into(),
            listen.to_string().into(),
            "--nodes".into(),
            nodes.to_string().into(),
            "--http".into(),
            http.to_string().into(),
        ]);
        let mut process = ManagedProcess::tied_to_test("tessera dev", tessera_bin(), args, dir.join("dev.log"));
        let stdout = process.start_with_piped_stdout()?;
        let (sender, stdout_lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = DevServer {
            process,
            ready_line: String::new(),
            addr: listen,
            http,
            stdout_lines,
            stdout_seen: Vec::new(),
        };
        server.wait_for_ready_line(listen).await?;
        Ok(server)
    }

    /// The address of the course's HTTP API.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// Every line printed on stdout so far.
    pub fn stdout(&mut self) -> Vec<String> {
        while let Ok(line) = self.stdout_lines.try_recv() {
            self.stdout_seen.push(line);
        }
        self.stdout_seen.clone()
    }

    /// The ready line as printed.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// The address the ready line announced.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends SIGINT (Ctrl-C) and waits up to `timeout` for the process to exit; `None` if it
    /// did not (it is then killed).
    pub async fn interrupt(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let report = self.process.stop_with(Signal::Interrupt, timeout).await;
        if report.forced {
            None
        } else {
            report.status
        }
    }

    /// The process's state, its log and what it printed on stdout.
    pub fn diagnostics(&mut self) -> String {
        while let Ok(line) = self.stdout_lines.try_recv() {
            self.stdout_seen.push(line);
        }
        format!(
            "{}\n    stdout:\n{}",
            self.process.log_excerpt(),
            indent(&self.stdout_seen.join("\n"), "    | ")
        )
    }

    async fn wait_for_ready_line(&mut self, listen: SocketAddr) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match tokio::time::timeout(Duration::from_millis(100), self.stdout_lines.recv()).await {
                Ok(Some(line)) => {
                    self.stdout_seen.push(line.clone());
                    if let Some((host, port)) = parse_ready_line(&line) {
                        if port != listen.port() {
                            return Err(format!(
                                "ready line {line:?} announces port {port}, not {}",
                                listen.port()
                            ));
                        }
                        self.addr = match host.parse() {
                            Ok(ip) => SocketAddr::new(ip, port),
                            Err(_) => listen,
                        };
                        self.ready_line = line;
                        return Ok(());
                    }
                }
                Ok(None) | Err(_) => {
                    if let Err(e) = self.process.check_alive() {
                        return Err(format!("tessera dev exited before printing its ready line: {e}"));
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "tessera dev printed no line `Tessera is ready: psql -h HOST -p PORT -U tessera` within \
                     {READY_TIMEOUT:?}\n{}",
                    self.diagnostics()
                ));
            }
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
        self.process.kill();
    }
}

/// `(HOST, PORT)` of a line `Tessera is ready: psql -h HOST -p PORT -U tessera`.
pub fn parse_ready_line(line: &str) -> Option<(String, u16)> {
    let rest = line.trim().strip_prefix("Tessera is ready: psql -h ")?;
    let mut words = rest.split_whitespace();
    let host = words.next()?;
    if words.next()? != "-p" {
        return None;
    }
    let port = words.next()?.parse().ok()?;
    (words.next()? == "-U" && words.next()? == "tessera" && words.next().is_none()).then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::parse_ready_line;

    #[test]
    fn parses_the_ready_line() {
        assert_eq!(
            parse_ready_line("Tessera is ready: psql -h 127.0.0.1 -p 5433 -U tessera"),
            Some(("127.0.0.1".to_string(), 5433))
        );
        assert_eq!(
            parse_ready_line("Tessera is ready: psql -h localhost -p 5433 -U postgres"),
            None
        );
        assert_eq!(parse_ready_line("starting node 1"), None);
        assert_eq!(
            parse_ready_line("Tessera is ready: psql -h localhost -p x -U tessera"),
            None
        );
    }
}

//! One child process started by the harness: its command line, its log file (stderr, and
//! stdout unless the caller reads it), signals, stopping with a deadline, and a description of
//! its state and last log lines for failure messages. A [`ManagedProcess`] kills its child
//! when dropped, so no test leaks processes.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How many log lines failure messages show per process.
pub const LOG_TAIL_LINES: usize = 25;

/// The signals the harness sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT, as Ctrl-C in a terminal.
    Interrupt,
    /// SIGTERM, a polite request to shut down.
    Terminate,
    /// SIGQUIT, PostgreSQL's "immediate shutdown".
    Quit,
    /// SIGKILL, which no process can refuse.
    Kill,
    /// SIGSTOP: the process is frozen (a long GC pause, a stalled VM) until SIGCONT. Its
    /// sockets stay open and the kernel keeps accepting data for it.
    Stop,
    /// SIGCONT: a stopped process runs again.
    Continue,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "INT",
            Signal::Terminate => "TERM",
            Signal::Quit => "QUIT",
            Signal::Kill => "KILL",
            Signal::Stop => "STOP",
            Signal::Continue => "CONT",
        }
    }
}

/// Sends `signal` to process `pid`.
///
/// The workspace forbids `unsafe` (so no `libc::kill`) and the harness avoids a dependency for
/// one call: it runs the `kill` program, which every Unix has.
pub fn send_signal(pid: u32, signal: Signal) -> Result<(), String> {
    let output = Command::new("kill")
        .args(["-s", signal.name(), &pid.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `kill` to send SIG{} to {pid}: {e}", signal.name()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`kill -s {} {pid}` failed: {}",
            signal.name(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The processes of this machine whose command line has `flag` followed by `value` (as
/// `--listen 127.0.0.1:4000`), read from /proc: processes the tests did not start themselves.
pub fn pids_with_arg(flag: &str, value: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| {
                let args: Vec<&[u8]> = line.split(|b| *b == 0).collect();
                args.windows(2)
                    .any(|w| w[0] == flag.as_bytes() && w[1] == value.as_bytes())
            })
        })
        .collect()
}

/// How a process ended when the harness stopped it.
#[derive(Debug, Clone)]
pub struct StopReport {
    /// The process's name, e.g. `node-1`.
    pub name: String,
    /// Its exit status (`None` if it was not running).
    pub status: Option<ExitStatus>,
    /// Whether it ignored the polite signal and had to be killed.
    pub forced: bool,
}

/// A child process with a log file, restartable with the same command line.
pub struct ManagedProcess {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    log_path: PathBuf,
    child: Option<Child>,
    /// How the last run ended, once it has been reaped.
    last_exit: Option<ExitStatus>,
    /// Whether the last run was ended by the harness (so its exit is no surprise).
    ended_by_harness: bool,
}

impl ManagedProcess {
    /// A process that is not started yet; its output will go to `log_path`.
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>, args: Vec<OsString>, log_path: PathBuf) -> Self {
        ManagedProcess {
            name: name.into(),
            program: program.into(),
            args,
            log_path,
            child: None,
            last_exit: None,
            ended_by_harness: false,
        }
    }

    /// Like [`new`](Self::new), for a process that must die with the test even if the test
    /// process is killed: see [`killed_with_parent`].
    pub fn tied_to_test(
        name: impl Into<String>,
        program: impl Into<PathBuf>,
        args: Vec<OsString>,
        log_path: PathBuf,
    ) -> Self {
        let (program, args) = killed_with_parent(program.into(), args);
        ManagedProcess::new(name, program, args, log_path)
    }

    /// The name used in messages, e.g. `node-1`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the process's output goes.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id of the running child.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The command line, as a shell would show it.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Starts the process with stdout and stderr appended to the log file.
    pub fn start(&mut self) -> Result<(), String> {
        let log = self.open_log_for_run()?;
        let stdout = log
            .try_clone()
            .map_err(|e| format!("cannot duplicate the log file handle: {e}"))?;
        self.spawn(Stdio::from(stdout), Stdio::from(log)).map(|_| ())
    }

    /// Starts the process with stderr appended to the log file and stdout handed to the caller.
    pub fn start_with_piped_stdout(&mut self) -> Result<ChildStdout, String> {
        let log = self.open_log_for_run()?;
        let child = self.spawn(Stdio::piped(), Stdio::from(log))?;
        Ok(child.stdout.take().expect("stdout was piped"))
    }

    fn open_log_for_run(&self) -> Result<File, String> {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| format!("cannot open log file {}: {e}", self.log_path.display()))?;
        // Restarts append to the same log; a marker tells the runs apart.
        let _ = writeln!(log, "==== harness: starting {}", self.command_line());
        Ok(log)
    }

    fn spawn(&mut self, stdout: Stdio, stderr: Stdio) -> Result<&mut Child, String> {
        let mut command = Command::new(&self.program);
        without_tessera_env(&mut command);
        let child = command
            .args(&self.args)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {} ({}): {e}", self.name, self.command_line()))?;
        self.last_exit = None;
        self.ended_by_harness = false;
        Ok(self.child.insert(child))
    }

    /// Whether the child is still running (reaping it if it has exited).
    pub fn is_running(&mut self) -> bool {
        self.poll_exit();
        self.child.is_some()
    }

    /// Reaps the child if it has exited, remembering its status.
    fn poll_exit(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(Some(status)) = child.try_wait() {
                self.last_exit = Some(status);
                self.child = None;
            }
        }
    }

    /// `Ok` while the process runs; an error naming its exit status and showing its log once
    /// it has died on its own.
    pub fn check_alive(&mut self) -> Result<(), String> {
        self.poll_exit();
        match (&self.child, self.last_exit) {
            (Some(_), _) => Ok(()),
            (None, Some(status)) if !self.ended_by_harness => Err(format!(
                "{} died unexpectedly ({status})\n{}",
                self.name,
                self.log_excerpt()
            )),
            (None, _) => Err(format!("{} is not running", self.name)),
        }
    }

    /// Sends a signal to the running child.
    pub fn signal(&self, signal: Signal) -> Result<(), String> {
        let pid = self.pid().ok_or_else(|| format!("{} is not running", self.name))?;
        send_signal(pid, signal)
    }

    /// SIGKILL, then reaps the child. Does nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            self.last_exit = child.wait().ok();
            self.ended_by_harness = true;
        }
    }

    /// Waits up to `timeout` for the child to exit on its own; `None` if it is still running.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            self.poll_exit();
            if self.child.is_none() {
                return self.last_exit;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends `signal`, waits up to `timeout` for the child to exit, then kills it.
    pub async fn stop_with(&mut self, signal: Signal, timeout: Duration) -> StopReport {
        let name = self.name.clone();
        if !self.is_running() {
            return StopReport {
                name,
                status: None,
                forced: false,
            };
        }
        self.ended_by_harness = true;
        let _ = self.signal(signal);
        if let Some(status) = self.wait_for_exit(timeout).await {
            return StopReport {
                name,
                status: Some(status),
                forced: false,
            };
        }
        self.kill();
        StopReport {
            name,
            status: self.last_exit,
            forced: true,
        }
    }

    /// Like [`stop_with`](Self::stop_with) but blocking the thread: for `Drop`, which cannot
    /// await.
    pub fn stop_blocking(&mut self, signal: Signal, timeout: Duration) {
        if !self.is_running() {
            return;
        }
        self.ended_by_harness = true;
        let _ = self.signal(signal);
        let deadline = Instant::now() + timeout;
        while self.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    /// The last `lines` lines of the log file.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }

    /// A few lines for a failure message: state, command line, log path and last log lines.
    pub fn log_excerpt(&self) -> String {
        let state = match (&self.child, self.last_exit) {
            (Some(child), _) => format!("running, pid {}", child.id()),
            (None, Some(status)) => format!("exited: {status}"),
            (None, None) => "not started".to_string(),
        };
        let tail = self.log_tail(LOG_TAIL_LINES);
        let tail = if tail.is_empty() {
            "    (log is empty)".to_string()
        } else {
            indent(&tail, "    | ")
        };
        format!(
            "--- {} ({state})\n    command: {}\n    log: {}\n{tail}",
            self.name,
            self.command_line(),
            self.log_path.display()
        )
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where `setpriv` (util-linux) is, if it is installed.
pub fn setpriv_path() -> Option<PathBuf> {
    ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The command line that runs `program args` so that it is killed when the test that started
/// it dies, even by SIGKILL (a CI timeout), when `Drop` never runs: through
/// `setpriv --pdeathsig KILL`, which sets the parent-death signal and then executes the
/// program (same pid). Unchanged where setpriv is not installed.
///
/// The signal fires when the *thread* that spawned the child exits; the harness spawns from the
/// test's own thread (or a runtime worker), which lives as long as the test.
pub fn killed_with_parent(program: PathBuf, args: Vec<OsString>) -> (PathBuf, Vec<OsString>) {
    match setpriv_path() {
        None => (program, args),
        Some(setpriv) => {
            let mut wrapped: Vec<OsString> = vec!["--pdeathsig".into(), "KILL".into(), "--".into(), program.into()];
            wrapped.extend(args);
            (setpriv, wrapped)
        }
    }
}

/// Removes every `TESSERA_*` variable from the environment `command` will run with.
///
/// Tessera reads any flag from a `TESSERA_*` variable too: a stray one in the test environment
/// (`TESSERA_CONFIG`, `TESSERA_UNSAFE_SKIP_FSYNC`...) must not change the processes under
/// test. (`TESSERA_BIN` only tells the harness where the binary is.)
pub fn without_tessera_env(command: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TESSERA_") {
            command.env_remove(key);
        }
    }
    command
}

/// Runs `program args` to completion with stdin closed and the output captured, killing it
/// if it takes longer than `timeout`.
pub async fn run_to_completion(program: &Path, args: &[&str], timeout: Duration) -> Result<Output, String> {
    let mut command = Command::new(program);
    without_tessera_env(&mut command).args(args).stdin(Stdio::null());
    let command_line = format!("{} {}", program.display(), args.join(" "));
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    match tokio::time::timeout(timeout, command.output()).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(format!("cannot run `{command_line}`: {e}")),
        Err(_) => Err(format!("`{command_line}` did not exit within {timeout:?}")),
    }
}

/// The last `lines` lines of a text file (empty if it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Prefixes every line of `text` with `prefix`.
pub fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

//! Standalone supervision of plugin processes: a PluginDeployment with a `command` is
//! started by the dataplane, its output logged, and restarted when it exits.
//!
//! - Start: `command[0]` with `command[1..]` and `args`, the dataplane's environment plus
//!   `spec.env` plus `MCP_PLUGIN_LISTEN` (the endpoint, `tcp://127.0.0.1:PORT` or
//!   `unix:///…sock`), stdin `/dev/null`, in its own process group (a Ctrl-C on the
//!   terminal reaches the dataplane, which stops its plugins in order). A stale socket file
//!   is removed first.
//! - Output: each line of stdout and stderr goes into the log at INFO with fields
//!   `plugin` (`namespace/name`) and `stream`; lines longer than 8 KiB are split.
//! - Restart: when the process exits (or cannot be started) it is started again after an
//!   exponential backoff with jitter, reset once a run lasted the stable period; each
//!   restart counts in `PluginState.restarts` and `mcp_plugin_restarts_total`.
//! - Stop (shutdown, removal, spec change): SIGTERM, then SIGKILL after the grace period.
//!   The child is also killed if the dataplane drops it (`kill_on_drop`), and, on Linux, by
//!   the kernel when the dataplane dies without stopping it (`kill -9`, OOM): the parent-death
//!   signal, see [`spawner`].

use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use mcp_crds::plugin::ENV_LISTEN;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::HostSettings;
use super::backoff::Backoff;
use super::connection::Connection;

/// Longest log line forwarded in one piece, octets.
const MAX_LINE: u64 = 8 * 1024;

/// A supervised plugin process; [`Supervisor::stop`] ends it.
#[derive(Debug)]
pub struct Supervisor {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Supervisor {
    /// Starts supervising the process of `conn`'s PluginDeployment, once `after` (the
    /// retirement of the process it replaces, which may hold the same port) has finished.
    pub fn spawn(
        conn: Arc<Connection>,
        settings: Arc<HostSettings>,
        after: Option<JoinHandle<()>>,
    ) -> Self {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(supervise(conn, settings, after, cancel.clone()));
        Self { cancel, task }
    }

    /// Stops the process (SIGTERM, SIGKILL after the grace period) and the supervision.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

async fn supervise(
    conn: Arc<Connection>,
    settings: Arc<HostSettings>,
    after: Option<JoinHandle<()>>,
    cancel: CancellationToken,
) {
    if let Some(previous) = after {
        let _ = previous.await;
    }
    let label = conn.label().to_owned();
    let spec = conn.spec().clone();
    let Some((program, fixed_args)) = spec.command.split_first() else {
        return;
    };
    let mut backoff = Backoff::new(settings.restart_base, settings.restart_max);
    let mut first = true;
    loop {
        if !first {
            conn.count_restart();
        }
        first = false;
        if let Some(socket) = conn.endpoint().socket_path() {
            if let Some(dir) = socket.parent()
                && let Err(e) = tokio::fs::create_dir_all(dir).await
            {
                tracing::warn!(plugin = %label, dir = %dir.display(), error = %e, "cannot create the plugin socket directory");
            }
            match tokio::fs::remove_file(socket).await {
                Ok(()) => {
                    tracing::debug!(plugin = %label, socket = %socket.display(), "stale plugin socket removed")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(plugin = %label, socket = %socket.display(), error = %e, "cannot remove the stale plugin socket")
                }
            }
        }
        let mut cmd = Command::new(program);
        cmd.args(fixed_args)
            .args(&spec.args)
            .envs(
                spec.env
                    .iter()
                    .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default())),
            )
            .env(ENV_LISTEN, conn.endpoint().listen_value())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let started = Instant::now();
        match spawner::spawn(cmd).await {
            Err(e) => {
                let why = format!("cannot start {program:?}: {e}");
                tracing::error!(plugin = %label, error = %why, "plugin process did not start");
                conn.note_error(why);
            }
            Ok(mut child) => {
                let pid = child.id();
                tracing::info!(plugin = %label, pid = pid.unwrap_or(0), program = %program, "plugin process started");
                let mut forwarders = Vec::new();
                if let Some(out) = child.stdout.take() {
                    forwarders.push(tokio::spawn(forward(out, label.clone(), "stdout")));
                }
                if let Some(err) = child.stderr.take() {
                    forwarders.push(tokio::spawn(forward(err, label.clone(), "stderr")));
                }
                let exited = tokio::select! {
                    status = child.wait() => Some(status),
                    () = cancel.cancelled() => None,
                };
                match exited {
                    None => {
                        terminate(&mut child, &label, settings.stop_grace).await;
                        drain(forwarders, &label, settings.stop_grace).await;
                        return;
                    }
                    Some(status) => {
                        // The plugin's own children would keep the port and the output
                        // pipes (so the forwarders, and this loop, would never end).
                        kill_group(pid);
                        let why = match status {
                            Ok(s) => format!("plugin process exited ({s})"),
                            Err(e) => format!("plugin process lost: {e}"),
                        };
                        tracing::warn!(plugin = %label, status = %why, "plugin process exited; restarting with backoff");
                        conn.note_error(why);
                        drain(forwarders, &label, settings.stop_grace).await;
                    }
                }
                if started.elapsed() >= settings.restart_stable {
                    backoff.reset();
                }
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// SIGKILL to what is left of the process group of the exited plugin `pid`.
fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) on the group the plugin led (`process_group(0)`), just reaped:
        // the id stays in use while any member lives, and reusing it would take the pid
        // space wrapping around in between; an empty group is ESRCH.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// SIGTERM to the plugin's process group, then SIGKILL to the group when the process has
/// not exited within `grace`. The group, not only the process: a plugin started through a
/// wrapper (`sh -c`, a launcher script) has its real server as a child, which would
/// otherwise be left running, holding the port and the output pipes.
async fn terminate(child: &mut Child, label: &str, grace: std::time::Duration) {
    #[cfg(unix)]
    let group = child.id().and_then(|p| i32::try_from(p).ok());
    #[cfg(unix)]
    if let Some(pgid) = group {
        // SAFETY: kill(2) on the process group the child leads (`process_group(0)`): its
        // pid is not reaped yet (the Child still owns it), so the group id cannot have been
        // reused; a valid signal number.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => {
            tracing::info!(plugin = %label, status = ?status.ok(), "plugin process stopped");
        }
        Err(_) => {
            tracing::warn!(plugin = %label, grace_ms = grace.as_millis(), "plugin process ignored SIGTERM; killing it");
            let _ = child.kill().await;
        }
    }
    // Whatever the leader left behind in its group goes too.
    #[cfg(unix)]
    kill_group(group.and_then(|g| u32::try_from(g).ok()));
}

/// Waits up to `grace` for the output forwarders to reach the end of their pipes, then
/// drops them: a process that escaped the plugin's group (`setsid`) may hold the pipes open
/// forever, and must not stall the supervision.
async fn drain(forwarders: Vec<JoinHandle<()>>, label: &str, grace: std::time::Duration) {
    for mut f in forwarders {
        if tokio::time::timeout(grace, &mut f).await.is_err() {
            tracing::warn!(plugin = %label, "plugin output still open after the process ended; no longer forwarding it");
            f.abort();
        }
    }
}

/// Logs each line of `reader` with the plugin's name.
async fn forward(reader: impl AsyncRead + Unpin, label: String, stream: &'static str) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\r', '\n']);
                tracing::info!(plugin = %label, stream, "{line}");
            }
        }
    }
}

/// Plugin processes are forked from one thread that lives as long as the dataplane, with
/// the parent-death signal set to SIGKILL (Linux `prctl(PR_SET_PDEATHSIG)`), so that a
/// dataplane killed without a chance to stop them (`kill -9`, the OOM killer) does not leave
/// them running, holding their port. The kernel sends that signal when the *thread* that
/// forked the child ends, not the process; a Tokio worker may end before the process (a
/// runtime shut down, a blocking thread retired), hence the dedicated thread.
///
/// Only the plugin process itself gets the signal: a child it started (a wrapper's real
/// server) outlives it unless the wrapper `exec`s it (docs/plugin-host.md).
mod spawner {
    use std::io;
    use std::sync::OnceLock;
    use std::sync::mpsc;

    use tokio::process::{Child, Command};
    use tokio::runtime::Handle;
    use tokio::sync::oneshot;

    struct Request {
        cmd: Command,
        runtime: Handle,
        reply: oneshot::Sender<io::Result<Child>>,
    }

    static SPAWNER: OnceLock<io::Result<mpsc::Sender<Request>>> = OnceLock::new();

    fn start() -> io::Result<mpsc::Sender<Request>> {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("mcp-plugin-spawner".into())
            .spawn(move || {
                while let Ok(Request {
                    mut cmd,
                    runtime,
                    reply,
                }) = rx.recv()
                {
                    // The child's pidfd / SIGCHLD reaping belongs to the caller's runtime.
                    let _entered = runtime.enter();
                    let _ = reply.send(cmd.spawn());
                }
            })?;
        Ok(tx)
    }

    /// Spawns `cmd` from the spawner thread, with the parent-death signal on Linux.
    ///
    /// # Errors
    /// The spawn's error, or `Other` if the spawner thread could not be started.
    pub(super) async fn spawn(mut cmd: Command) -> io::Result<Child> {
        set_parent_death_signal(&mut cmd);
        let sender = match SPAWNER.get_or_init(start) {
            Ok(sender) => sender.clone(),
            Err(e) => return Err(io::Error::other(format!("no plugin spawner thread: {e}"))),
        };
        let (reply, answer) = oneshot::channel();
        sender
            .send(Request {
                cmd,
                runtime: Handle::current(),
                reply,
            })
            .map_err(|_| io::Error::other("the plugin spawner thread has ended"))?;
        answer
            .await
            .map_err(|_| io::Error::other("the plugin spawner thread has ended"))?
    }

    #[cfg(target_os = "linux")]
    fn set_parent_death_signal(cmd: &mut Command) {
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and calls only prctl(2)
        // and getppid(2), both async-signal-safe system calls; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The dataplane died between fork and prctl: the signal will never come.
                if u32::try_from(libc::getppid()).ok() != Some(parent) {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn set_parent_death_signal(_cmd: &mut Command) {}
}

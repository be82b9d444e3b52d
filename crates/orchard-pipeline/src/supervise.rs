//! Running a stage's command: retries with their delays, one process group per command (timeouts and
//! Ctrl-C reach everything it started), its output read by one `poll` over both pipes and a pidfd.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::control::{say, signal_group, Options};
use crate::error::{PipelineError, Result};
use crate::outcome::{Capture, Kept};
use crate::project::Project;
use crate::spec::Stage;

pub(crate) fn run_with_retries(project: &Project, stage: &Stage, opts: &Options, env: &[(String, String)], capture: &Capture) -> Result<u32> {
    let total = stage.policy.retries + 1;
    let mut attempt = 1;
    loop {
        capture.attempts.store(attempt, std::sync::atomic::Ordering::Relaxed);
        match run_once(project, stage, opts, env, capture) {
            Ok(()) => return Ok(attempt),
            Err(e) if attempt < total && !opts.stop.interrupted() => {
                let warning = format!(
                    "WARNING: stage '{}' failed ({e}); retrying in {:.1}s (attempt {} of {total})",
                    stage.name,
                    stage.policy.retry_delay.as_secs_f64(),
                    attempt + 1
                );
                eprintln!("{warning}");
                capture.note(&warning);
                // In short naps, so that Ctrl-C during a long delay stops the stage at once.
                let until = Instant::now() + stage.policy.retry_delay;
                while !opts.stop.interrupted() && Instant::now() < until {
                    std::thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(50)));
                }
                if opts.stop.interrupted() {
                    return Err(PipelineError::Invalid("repro was interrupted".into()));
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

pub(crate) fn run_once(project: &Project, stage: &Stage, opts: &Options, env: &[(String, String)], capture: &Capture) -> Result<()> {
    let started = Instant::now();
    for line in stage.cmd.lines() {
        if opts.stop.interrupted() {
            return Err(PipelineError::Invalid(format!("interrupted before: {line}")));
        }
        say(opts.progress_to_stderr, &format!("> {line}"));
        *capture.exit_code.lock().expect("capture poisoned") = None;
        let mut cmd = Command::new(shell());
        cmd.arg("-c")
            .arg(&line)
            .current_dir(project.wdir(stage))
            .env("DVC_ROOT", &project.root)
            .env("DVC_STAGE", &stage.name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in opts.env.iter().chain(env) {
            cmd.env(k, v);
        }
        // Its own process group, so that a timeout stops everything the command started, not only the shell.
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
            if opts.die_with_parent {
                // SAFETY: prctl is async-signal-safe; nothing is allocated between fork and exec.
                unsafe {
                    cmd.pre_exec(|| {
                        #[cfg(target_os = "linux")]
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
            }
        }
        let mut child = cmd.spawn().map_err(|e| PipelineError::Invalid(format!("failed to run: {e}")))?;
        let group = child.id() as libc::pid_t;
        opts.stop.enter(group);
        if opts.stop.interrupted() {
            // Interrupted between the look before the stage and now: this command stops too.
            signal_group(group, libc::SIGINT);
        }
        let status = supervise(&mut child, stage.policy.timeout, started, capture, opts.progress_to_stderr);
        opts.stop.leave(group);
        let status = status?;
        if opts.stop.interrupted() && !status.success() {
            return Err(PipelineError::Invalid(format!("interrupted: {line}")));
        }
        *capture.exit_code.lock().expect("capture poisoned") = status.code();
        if !status.success() {
            let code = status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
            return Err(PipelineError::Invalid(format!("failed to run: {line}, exited with {code}")));
        }
    }
    Ok(())
}

/// How long a command's output is still read after it exits: a process it left behind (`daemon &`) may
/// hold the pipes open for ever.
pub(crate) const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Waits for a command while its output goes to the terminal as it comes and into the stage run's record,
/// all on the stage's own thread: one `poll` on the two pipes and a pidfd (readable when the child exits)
/// instead of a thread per stream, which cost more than a trivial command's own bookkeeping. Kills the
/// command's process group when `limit` passes.
pub(crate) fn supervise(child: &mut Child, limit: Option<Duration>, started: Instant, capture: &Capture, to_stderr: bool) -> Result<ExitStatus> {
    let failed = |e: std::io::Error| PipelineError::Invalid(format!("failed to run: {e}"));
    /// One of the command's output pipes: where what it reads is kept, and whether it is passed on to stdout.
    struct Stream<'a> {
        pipe: std::fs::File,
        keep: &'a Mutex<Kept>,
        to_stdout: bool,
    }
    let mut streams: Vec<Stream> = Vec::with_capacity(2);
    if let Some(p) = child.stdout.take() {
        streams.push(Stream { pipe: OwnedFd::from(p).into(), keep: &capture.stdout, to_stdout: !to_stderr });
    }
    if let Some(p) = child.stderr.take() {
        streams.push(Stream { pipe: OwnedFd::from(p).into(), keep: &capture.stderr, to_stdout: false });
    }
    let pidfd = pidfd_open(child.id());
    let mut status: Option<ExitStatus> = None;
    let mut exited_at: Option<Instant> = None;
    let mut buf = [0u8; 16 * 1024];
    loop {
        if status.is_none() {
            if let Some(s) = child.try_wait().map_err(failed)? {
                status = Some(s);
                exited_at = Some(Instant::now());
            }
        }
        if let Some(s) = status {
            if streams.is_empty() || exited_at.is_some_and(|t| t.elapsed() >= DRAIN_AFTER_EXIT) {
                return Ok(s);
            }
        }
        // How long to sleep in poll: until the time limit, the end of the drain, or (without a pidfd, on an
        // old kernel) a short look at the child again; without any of those, until something happens.
        let mut wait: Option<Duration> = None;
        let mut at_most = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        match (status, limit) {
            (Some(_), _) => at_most(DRAIN_AFTER_EXIT.saturating_sub(exited_at.map_or(Duration::ZERO, |t| t.elapsed()))),
            (None, Some(limit)) => {
                let left = limit.saturating_sub(started.elapsed());
                if left.is_zero() {
                    signal_group(child.id() as libc::pid_t, libc::SIGKILL);
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(PipelineError::Invalid(format!("timed out after {}s", limit.as_secs_f64())));
                }
                at_most(left);
            }
            (None, None) => {}
        }
        if status.is_none() && pidfd.is_none() {
            at_most(Duration::from_millis(10));
        }
        let mut fds: Vec<libc::pollfd> = streams.iter().map(|s| libc::pollfd { fd: s.pipe.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
        if let (None, Some(p)) = (status, &pidfd) {
            fds.push(libc::pollfd { fd: p.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        let timeout = wait.map_or(-1, |d| d.as_millis().clamp(1, i32::MAX as u128) as libc::c_int);
        // SAFETY: `fds` is a live, correctly sized array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(failed(e));
        }
        // Read what is ready; a stream at its end is closed. Back to front, so removing keeps the indices.
        for k in (0..streams.len()).rev() {
            if fds[k].revents == 0 {
                continue;
            }
            let ended = match streams[k].pipe.read(&mut buf) {
                Ok(0) => true,
                Ok(n) => {
                    let Stream { keep, to_stdout, .. } = &streams[k];
                    if *to_stdout {
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(&buf[..n]);
                        let _ = out.flush();
                    } else {
                        let _ = std::io::stderr().lock().write_all(&buf[..n]);
                    }
                    keep.lock().expect("capture poisoned").push(&buf[..n]);
                    false
                }
                Err(e) => e.kind() != std::io::ErrorKind::Interrupted,
            };
            if ended {
                streams.remove(k);
            }
        }
    }
}

/// A descriptor that becomes readable when the process exits (Linux 5.3 and later; None elsewhere, and
/// then the child is looked at every few milliseconds instead).
pub(crate) fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a plain system call taking two integers; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd >= 0 {
            // SAFETY: `fd` was just returned by the kernel and is owned by nothing else.
            return Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
    }
    let _ = pid;
    None
}

pub(crate) fn shell() -> &'static str {
    // DVC runs commands with $SHELL; sh when unset. Looked up once per process.
    static SHELL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SHELL.get_or_init(|| std::env::var("SHELL").ok().filter(|s| Path::new(s).is_file()).unwrap_or_else(|| "/bin/sh".into()))
}

//! The function under test as a child process: spawned (pinned to a core with `taskset`) with
//! a clean, Lambda-like environment, its CPU time read from the kernel's per-thread scheduler
//! statistics, its peak resident memory from `/proc/<pid>/status`.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How to start the function.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The function's binary (`bootstrap` on Lambda).
    pub program: PathBuf,
    /// The core it runs on (`taskset -c`), `None`: wherever the scheduler puts it.
    pub pin_cpu: Option<u32>,
    /// Its whole environment (nothing is inherited from the harness).
    pub env: Vec<(String, String)>,
    /// Where its stdout and stderr (the JSON logs and EMF metrics) go.
    pub log: PathBuf,
}

/// A running function.
#[derive(Debug)]
pub struct FunctionProcess {
    child: Child,
    /// The instant just before the spawn (init time is counted from here).
    pub spawned: Instant,
    log: PathBuf,
}

impl FunctionProcess {
    /// Starts the function.
    ///
    /// # Errors
    /// The log cannot be created or the program (or `taskset`) cannot be started.
    pub fn spawn(launch: &Launch) -> io::Result<Self> {
        let log = File::create(&launch.log)?;
        let mut command = match launch.pin_cpu {
            // taskset execs the function in its own process: the pid (and its CPU time, which
            // includes taskset's own start, well under a millisecond) is the function's.
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(&launch.program);
                command
            }
            None => Command::new(&launch.program),
        };
        command
            .env_clear()
            .envs(launch.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let spawned = Instant::now();
        let child = command.spawn()?;
        Ok(Self {
            child,
            spawned,
            log: launch.log.clone(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, when the process has exited.
    ///
    /// # Errors
    /// The status cannot be read.
    pub fn exited(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// `VmHWM`: the most memory the process has had resident, in KiB.
    ///
    /// # Errors
    /// `/proc/<pid>/status` cannot be read or has no `VmHWM` line.
    pub fn peak_rss_kib(&self) -> io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| io::Error::other("no VmHWM in /proc/<pid>/status"))
    }

    /// The last `lines` lines the function printed (for error reports).
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Kills the function and reaps it.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        // A benchmark that ends early (an error) must not leave the function running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last `lines` lines of the file at `path` (empty when it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A process's CPU time in nanoseconds, read as the sum over its threads of the first field of
/// `/proc/<pid>/task/<tid>/schedstat` (time on a CPU; `utime`/`stime` in `/proc/<pid>/stat`
/// count 10 ms ticks, too coarse for one invocation).
///
/// Threads come and go (tokio's blocking pool lets idle threads exit): each reading adds what
/// every thread ran since the previous reading, so an exited thread costs only its last
/// moments, never a negative interval.
#[derive(Debug)]
pub struct CpuMeter {
    pid: u32,
    seen: HashMap<u32, u64>,
}

impl CpuMeter {
    /// A meter for `pid` that has seen nothing yet (the first reading is all CPU since exec).
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            seen: HashMap::new(),
        }
    }

    /// The CPU time the process spent since the previous call (since its start, the first time).
    ///
    /// # Errors
    /// `/proc/<pid>/task` cannot be read (the process is gone).
    pub fn since_last(&mut self) -> io::Result<Duration> {
        let mut spent = 0u64;
        let mut now = HashMap::with_capacity(self.seen.len());
        for entry in std::fs::read_dir(format!("/proc/{}/task", self.pid))? {
            let entry = entry?;
            let Some(tid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
                continue;
            };
            // A thread may exit between the listing and the read: it simply ran no more.
            let Ok(ran) = thread_runtime_ns(&entry.path()) else {
                continue;
            };
            spent += ran.saturating_sub(self.seen.get(&tid).copied().unwrap_or(0));
            now.insert(tid, ran);
        }
        self.seen = now;
        Ok(Duration::from_nanos(spent))
    }
}

/// The first field of a thread's `schedstat`: nanoseconds it has run on a CPU.
fn thread_runtime_ns(task_dir: &Path) -> io::Result<u64> {
    let schedstat = std::fs::read_to_string(task_dir.join("schedstat"))?;
    schedstat
        .split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| io::Error::other("malformed schedstat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_sees_this_process_burn_cpu() {
        let mut meter = CpuMeter::new(std::process::id());
        let before = meter.since_last().unwrap();
        assert!(before > Duration::ZERO, "a running process has used some CPU");
        // Spin until this thread itself has run 30 ms on a CPU (not 30 ms of wall time: on a
        // loaded machine the thread is preempted), then the process total must show at least that.
        let this_thread = Path::new("/proc/thread-self");
        let started_ns = thread_runtime_ns(this_thread).unwrap();
        let give_up = Instant::now() + Duration::from_secs(20);
        let mut counter = 0u64;
        while thread_runtime_ns(this_thread).unwrap() - started_ns < 30_000_000 && Instant::now() < give_up {
            for _ in 0..10_000 {
                counter = std::hint::black_box(counter.wrapping_add(1));
            }
        }
        let spun = meter.since_last().unwrap();
        assert!(
            spun >= Duration::from_millis(30),
            "30 ms of this thread's CPU measured as {spun:?}"
        );
    }
}

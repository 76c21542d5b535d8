//! Running the release binary from a benchmark: its wall time and peak
//! resident memory, the best of three.

// Each benchmark uses what it needs of this.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the command (`writ …`, made by the caller); its wall time and
/// peak resident memory (bytes). It must succeed.
// The child is reaped by `wait4`, which clippy does not know of.
#[allow(clippy::zombie_processes)]
pub fn measure(mut command: Command) -> (Duration, u64) {
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: `rusage` is plain data that `wait4` fills in; the pid is our
    // child's, waited for exactly once.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(pid, child.id() as libc::pid_t);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{command:?} failed"
    );
    // Linux reports kibibytes.
    (wall, usage.ru_maxrss as u64 * 1024)
}

/// The shortest wall time and the largest peak memory of three runs.
pub fn best_of_three(command: impl Fn() -> Command) -> (Duration, u64) {
    (0..3)
        .map(|_| measure(command()))
        .fold((Duration::MAX, 0), |(wall, rss), (w, r)| {
            (wall.min(w), rss.max(r))
        })
}

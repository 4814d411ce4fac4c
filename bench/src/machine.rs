//! The facts a benchmark table carries besides its figures: the machine (cores, CPU model,
//! memory, kernel), the date, the build profile, a process's peak memory and a directory's size.
//!
//! It owns reading `/proc`; it must never time anything.

use std::path::Path;
use std::time::Duration;

/// The machine the figures come from.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: f64,
    pub kernel: String,
    /// UTC date and time of the run, `2026-11-22 07:30 UTC`.
    pub date: String,
    /// `dev` or `release`: dev figures are not comparable with release ones.
    pub profile: &'static str,
}

/// The build profile of this binary: debug assertions are on in the dev profile only.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    }
}

fn proc_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim())
}

/// Reads the machine from `/proc` (unknown parts say so rather than fail the benchmark).
pub fn machine() -> Machine {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = proc_field(&cpuinfo, "model name")
        .unwrap_or("unknown CPU")
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = proc_field(&meminfo, "MemTotal")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    Machine {
        cores,
        cpu,
        memory_gib,
        kernel,
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        profile: profile(),
    }
}

impl Machine {
    /// One line for the head of a table.
    pub fn describe(&self) -> String {
        format!(
            "{} cores, {}, {:.0} GiB RAM, Linux {}; {} build; {}",
            self.cores, self.cpu, self.memory_gib, self.kernel, self.profile, self.date
        )
    }
}

/// This process's peak resident set (`VmHWM` of `/proc/self/status`), in KiB. The kernel
/// cannot reset it, so each stage of `bench` runs in a process of its own.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    proc_field(&status, "VmHWM")?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// CPU time this process has used so far, every thread's, user and system
/// (`utime` + `stime` of `/proc/self/stat`, in the kernel's fixed 100 ticks a second).
/// Unlike a wall time it does not count waiting, so two steps that share the machine's cores
/// can be told apart by it.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_of_stat(&stat)
}

/// `utime + stime` of a `/proc/PID/stat` line. The fields after the command name (which may
/// hold spaces and parentheses, so it is cut at the last `)`) start with the state, field 3;
/// `utime` and `stime` are fields 14 and 15.
fn cpu_of_stat(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        utime.checked_add(stime)?.checked_mul(10)?,
    ))
}

/// Bytes this process has read through `read`-family system calls so far (`rchar` of
/// `/proc/self/io`), page-cache hits included: what sled copied in to answer a read, whether
/// or not the disk was touched. The difference over a read says how much of the store it
/// pulled in, against how much it needed.
pub fn bytes_read() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    proc_field(&io, "rchar")?.trim().parse().ok()
}

/// Bytes read since `before` (a `bytes_read` taken earlier); 0 where `/proc` cannot say.
pub fn bytes_read_since(before: Option<u64>) -> u64 {
    match (before, bytes_read()) {
        (Some(b), Some(a)) => a.saturating_sub(b),
        _ => 0,
    }
}

/// Bytes of the files under `path` (0 for what cannot be read).
pub fn dir_size(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => std::fs::read_dir(path)
            .map(|rd| rd.filter_map(Result::ok).map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_stat_line_with_a_parenthesised_name_when_reading_cpu_then_utime_plus_stime() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime ...
        let line = "4242 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 3";
        assert_eq!(cpu_of_stat(line), Some(Duration::from_millis(3250)));
        assert_eq!(cpu_of_stat("4242 (x) R 1 2"), None);
    }

    #[test]
    fn given_proc_text_when_reading_a_field_then_the_value_is_trimmed() {
        let text = "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\nflags\t\t: sse\n";
        assert_eq!(proc_field(text, "model name"), Some("Some CPU @ 2.0GHz"));
        assert_eq!(proc_field(text, "cache size"), None);
    }

    #[test]
    fn given_this_process_when_reading_its_peak_then_it_is_positive() {
        assert!(peak_rss_kib().is_some_and(|kb| kb > 0));
    }
}

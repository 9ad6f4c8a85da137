//! This process's CPU time and resident memory, read from `/proc/self` (Linux), for the
//! console's stream health. Elsewhere (or if `/proc` cannot be read) there is no reading.

use std::time::Duration;

/// What `/proc/self` says at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// User plus system CPU time of every thread so far.
    pub cpu_time: Duration,
    /// Resident set size.
    pub memory_bytes: u64,
}

/// Reads this process's usage now; `None` where `/proc/self` is not there.
pub fn read() -> Option<Usage> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    // SAFETY: sysconf only reads a system constant.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(Usage {
        cpu_time: cpu_time(&stat, u64::try_from(ticks_per_second).ok()?)?,
        memory_bytes: resident_bytes(&status)?,
    })
}

/// The CPU used between two readings `elapsed` apart, as a percentage of every core of the
/// machine (`cores` of them): 100 means all of them were busy.
pub fn cpu_percent(before: Usage, after: Usage, elapsed: Duration, cores: usize) -> f64 {
    let wall = elapsed.as_secs_f64() * cores.max(1) as f64;
    if wall <= 0.0 {
        return 0.0;
    }
    let used = after.cpu_time.saturating_sub(before.cpu_time).as_secs_f64();
    (used / wall * 100.0).min(100.0)
}

/// utime + stime (fields 14 and 15 of `/proc/self/stat`, in clock ticks). The command name
/// (field 2, in parentheses) may hold spaces and parentheses, so fields are counted after its
/// last `)`.
fn cpu_time(stat: &str, ticks_per_second: u64) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name: utime is field 14, the 12th from there.
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    if ticks_per_second == 0 {
        return None;
    }
    let ticks = user + system;
    Some(
        Duration::from_secs(ticks / ticks_per_second)
            + Duration::from_nanos((ticks % ticks_per_second) * 1_000_000_000 / ticks_per_second),
    )
}

/// `VmRSS:` of `/proc/self/status` (in kB there).
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line["VmRSS:".len()..]
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kilobytes * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line from `cat /proc/self/stat` with its name changed to one with a space and a
    /// parenthesis: utime 1234, stime 566.
    const STAT: &str = "4242 (sel fcast) worker) S 1 4242 4242 0 -1 4194560 1500 0 0 0 1234 566 \
                        0 0 20 0 9 0 123456 987654321 12345 18446744073709551615 1 1 0 0 0 0 0 \
                        4096 17032 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn cpu_time_is_utime_plus_stime_after_the_name() {
        assert_eq!(cpu_time(STAT, 100), Some(Duration::from_millis(18_000)));
        assert_eq!(cpu_time(STAT, 1000), Some(Duration::from_millis(1_800)));
        assert_eq!(cpu_time("4242 (x) S 1 2", 100), None, "too short");
        assert_eq!(cpu_time("no parenthesis", 100), None);
    }

    #[test]
    fn resident_memory_is_vmrss() {
        let status = "Name:\tselfcast\nVmPeak:\t  900000 kB\nVmRSS:\t   51200 kB\nThreads:\t9\n";
        assert_eq!(resident_bytes(status), Some(51200 * 1024));
        assert_eq!(resident_bytes("Name:\tselfcast\n"), None);
    }

    #[test]
    fn cpu_percent_is_of_every_core() {
        let at = |ms| Usage {
            cpu_time: Duration::from_millis(ms),
            memory_bytes: 0,
        };
        // One core busy for the whole second on a two-core machine: half of it.
        let percent = cpu_percent(at(1000), at(2000), Duration::from_secs(1), 2);
        assert!((percent - 50.0).abs() < 1e-9, "{percent}");
        assert_eq!(cpu_percent(at(5), at(5), Duration::ZERO, 2), 0.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_can_be_read() {
        let usage = read().expect("/proc/self");
        assert!(usage.memory_bytes > 1024 * 1024, "{usage:?}");
    }
}

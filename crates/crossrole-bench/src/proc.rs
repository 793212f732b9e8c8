//! This process's CPU time and peak memory, from /proc (Linux).

/// CPU time (user + system) of this process so far, in milliseconds.
pub fn cpu_ms() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0 };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the ')'. Clock ticks are 100 Hz.
    (ticks(11) + ticks(12)) * 10
}

/// Peak resident memory of process `pid` (or this one), in MiB.
pub fn peak_rss_mib(pid: Option<u32>) -> f64 {
    rss_field(pid, "VmHWM:")
}

/// Current resident memory of process `pid` (or this one), in MiB.
pub fn rss_mib(pid: Option<u32>) -> f64 {
    rss_field(pid, "VmRSS:")
}

fn rss_field(pid: Option<u32>, field: &str) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

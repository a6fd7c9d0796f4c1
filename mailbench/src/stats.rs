//! Latency percentiles, CPU accounting from /proc, and the report printer
//! (a table for people and JSON for scripts).

use std::time::Duration;

/// Latencies collected by the workers plus the wall time of the run.
pub struct Report {
    /// What was measured, e.g. "smtp".
    pub mode: String,
    /// Parameters of the run, printed as given.
    pub params: Vec<(String, String)>,
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub failed: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// One latency per successful operation.
    pub latencies: Vec<Duration>,
    /// Extra named figures (e.g. a single timed command).
    pub extra: Vec<(String, String)>,
    /// Wall time over which the CPU figures were taken (the whole command;
    /// zero means `elapsed`).
    pub cpu_wall: Duration,
    /// CPU seconds used by this process during the run.
    pub client_cpu: f64,
    /// CPU seconds used by the server process (when `--server-pid` given).
    pub server_cpu: Option<f64>,
    /// What the rate counts ("msg/s", "fetch/s").
    pub unit: String,
}

/// The `p` quantile (0..=1) of `sorted`, in milliseconds.
pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

impl Report {
    /// Print the table (stdout) or JSON.
    pub fn print(mut self, json: bool) {
        self.latencies.sort();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let rate = self.ok as f64 / secs;
        let l = &self.latencies;
        let (p50, p90, p99, max) = (pct(l, 0.50), pct(l, 0.90), pct(l, 0.99), pct(l, 1.0));
        let cpu_secs = if self.cpu_wall.is_zero() {
            secs
        } else {
            self.cpu_wall.as_secs_f64().max(1e-9)
        };
        let client_util = self.client_cpu / cpu_secs * 100.0;
        let server_util = self.server_cpu.map(|c| c / cpu_secs * 100.0);
        if json {
            let mut obj = serde_json::Map::new();
            obj.insert("mode".into(), self.mode.clone().into());
            for (k, v) in &self.params {
                obj.insert(k.clone(), v.clone().into());
            }
            obj.insert("ok".into(), self.ok.into());
            obj.insert("failed".into(), self.failed.into());
            obj.insert("seconds".into(), secs.into());
            obj.insert("rate".into(), rate.into());
            obj.insert("unit".into(), self.unit.clone().into());
            obj.insert("p50_ms".into(), p50.into());
            obj.insert("p90_ms".into(), p90.into());
            obj.insert("p99_ms".into(), p99.into());
            obj.insert("max_ms".into(), max.into());
            obj.insert("client_cpu_pct".into(), client_util.into());
            if let Some(s) = server_util {
                obj.insert("server_cpu_pct".into(), s.into());
            }
            for (k, v) in &self.extra {
                obj.insert(k.clone(), v.clone().into());
            }
            println!("{}", serde_json::Value::Object(obj));
            return;
        }
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("mailbench {} ({})", self.mode, params.join(" "));
        // Names longer than the usual 14 columns widen the table.
        let w = self.extra.iter().map(|(k, _)| k.len()).fold(14, usize::max);
        println!("  {:<w$} {:>12}", "ok", self.ok);
        println!("  {:<w$} {:>12}", "failed", self.failed);
        println!("  {:<w$} {:>12.3}", "seconds", secs);
        println!("  {:<w$} {:>12.1}", self.unit, rate);
        println!("  {:<w$} {:>12.2}", "p50 ms", p50);
        println!("  {:<w$} {:>12.2}", "p90 ms", p90);
        println!("  {:<w$} {:>12.2}", "p99 ms", p99);
        println!("  {:<w$} {:>12.2}", "max ms", max);
        for (k, v) in &self.extra {
            println!("  {:<w$} {:>12}", k, v);
        }
        println!("  {:<w$} {:>11.0}%", "client cpu", client_util);
        if let Some(s) = server_util {
            println!("  {:<w$} {:>11.0}%", "server cpu", s);
            if client_util > s {
                println!(
                    "  NOTE: the load tool used more CPU than the server: it may be the bottleneck"
                );
            }
        } else if client_util > 80.0 {
            println!(
                "  NOTE: the load tool used {client_util:.0}% of a core: it may be the bottleneck"
            );
        }
    }
}

/// CPU seconds (user + system) used so far by process `pid` ("self" for us).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux we run on.
    Some((utime + stime) / 100.0)
}

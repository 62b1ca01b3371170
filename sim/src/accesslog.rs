//! Reading access logs for `ferry sim --replay` and `ferry plan`: each line gives a request's
//! time and its duration, which the replay takes as the request's arrival and service time.
//!
//! The formats: the combined log format (nginx's and Apache's) followed by a request time,
//! nginx's `$request_time` (seconds, with a decimal point) or Apache's `%D` (microseconds, a
//! whole number); and ferry's own access log (`ferry start --access-log`), combined or JSON
//! lines. Each [`LogFormat`] has its line reader; everything after the line is shared.

use std::fmt;
use std::path::Path;
use time::format_description::well_known::Rfc3339;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Unreadable lines listed in an error or a warning; the rest are counted.
const UNREADABLE_SHOWN: usize = 5;
/// More unreadable lines than this share of all lines is an error, not a warning.
pub const UNREADABLE_SHARE_MAX: f64 = 0.01;

/// The formats the reader knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `host ident user [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 2326 "referer"
    /// "agent" TIME`, TIME being nginx's `$request_time` or Apache's `%D`.
    CombinedWithTime,
    /// ferry's own `--access-log`: the combined format followed by the request time in
    /// seconds and the app process's pid (`-` when no process served it). Logged at the end.
    Ferry,
    /// ferry's `--access-log-format json`: one object a line, whose `time` (RFC 3339, when
    /// the request ended, to the millisecond) and `request_time` (seconds) place the request
    /// exactly, with no spreading over the second, and whose `queue_time` is taken off its
    /// service time.
    FerryJson,
}

impl LogFormat {
    /// The format of a log, from its first line with text: `{` starts ferry's JSON lines,
    /// two fields after the last quote (a request time and a pid) ferry's combined format,
    /// anything else the combined format followed by a request time.
    pub fn detect(text: &str) -> LogFormat {
        let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
            return LogFormat::CombinedWithTime;
        };
        if line.starts_with('{') {
            return LogFormat::FerryJson;
        }
        let tail = line.rfind('"').map_or("", |at| &line[at + 1..]);
        match tail.split_whitespace().collect::<Vec<_>>()[..] {
            [time, pid] if time.contains('.') && is_pid(pid) => LogFormat::Ferry,
            _ => LogFormat::CombinedWithTime,
        }
    }

    /// What a line of this format looks like, for the error about a log that does not fit.
    fn described(self) -> &'static str {
        match self {
            LogFormat::CombinedWithTime => {
                "the combined log format followed by a request time (nginx $request_time or Apache %D)"
            }
            LogFormat::Ferry => {
                "ferry's access log (the combined format, the request time in seconds, the pid)"
            }
            LogFormat::FerryJson => "ferry's JSON access log (one object a line)",
        }
    }
}

fn is_pid(field: &str) -> bool {
    field == "-" || (!field.is_empty() && field.bytes().all(|b| b.is_ascii_digit()))
}

/// One logged request, relative to the start of the log's first second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LoggedRequest {
    pub arrival_nanos: u64,
    pub service_nanos: u64,
    /// The client went away this long after it arrived, while its request still waited for
    /// a process (ferry's JSON log: a 499 that no process served).
    pub gone_after_nanos: Option<u64>,
}

/// A line as a format reads it, before requests are placed in time.
struct LineRead {
    /// Unix time of the logged second.
    second: i64,
    /// Where in that second, when the log says (ferry's JSON); otherwise lines of one second
    /// are spread over it.
    subsec_nanos: Option<u32>,
    /// From its arrival to its end.
    duration_nanos: u64,
    /// The part of the duration it waited for a process (ferry's JSON says; 0 otherwise).
    queue_nanos: u64,
    /// Whether an app process served it, when the log says (ferry's pid field): one that
    /// none served (a 503, a client gone while queued) has no service time of its own.
    app_served: Option<bool>,
    /// nginx logs a request when it ends, Apache when it started.
    logged_at_end: bool,
    /// The client went away before its answer (ferry's JSON log says: status 499).
    client_gone: bool,
}

/// A line that could not be read: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub line: usize,
    pub why: String,
}

/// A log read: its requests in arrival order, and what could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessLog {
    pub file: String,
    pub requests: Vec<LoggedRequest>,
    /// Lines with text (blank lines are not counted).
    pub lines: usize,
    pub unreadable_count: usize,
    /// The first few unreadable lines.
    pub unreadable: Vec<Unreadable>,
    /// Unix time of the first logged second (arrival 0).
    pub start_unix_s: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogError(pub String);

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LogError {}

impl AccessLog {
    pub fn load(path: &Path, format: LogFormat) -> Result<AccessLog, LogError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|error| LogError(format!("{file}: cannot read the access log: {error}")))?;
        AccessLog::parse(&text, &file, format)
    }

    /// Reads a log in whichever format its first line shows (see [`LogFormat::detect`]).
    pub fn load_detected(path: &Path) -> Result<AccessLog, LogError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|error| LogError(format!("{file}: cannot read the access log: {error}")))?;
        AccessLog::parse(&text, &file, LogFormat::detect(&text))
    }

    /// Reads every line; more than 1% unreadable (or none readable) is an error naming the
    /// first unreadable lines.
    pub fn parse(text: &str, file: &str, format: LogFormat) -> Result<AccessLog, LogError> {
        let mut log = AccessLog {
            file: file.to_string(),
            ..AccessLog::default()
        };
        let mut read = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            log.lines += 1;
            let parsed = match format {
                LogFormat::CombinedWithTime => read_combined(line),
                LogFormat::Ferry => read_ferry(line),
                LogFormat::FerryJson => read_ferry_json(line),
            };
            match parsed {
                Ok(line) => read.push(line),
                Err(why) => {
                    log.unreadable_count += 1;
                    if log.unreadable.len() < UNREADABLE_SHOWN {
                        log.unreadable.push(Unreadable {
                            line: index + 1,
                            why,
                        });
                    }
                }
            }
        }
        if read.is_empty() {
            let why = if log.lines == 0 {
                "it has no lines".to_string()
            } else {
                format!("no line could be read; {}", log.unreadable_summary())
            };
            return Err(LogError(format!("{file}: nothing to replay: {why}")));
        }
        if log.unreadable_count as f64 > UNREADABLE_SHARE_MAX * log.lines as f64 {
            return Err(LogError(format!(
                "{file}: {} of {} lines cannot be read (more than 1%): is it {}? {}",
                log.unreadable_count,
                log.lines,
                format.described(),
                log.unreadable_summary()
            )));
        }
        log.place(read);
        Ok(log)
    }

    /// "line 3: …; line 9: …" for the first unreadable lines, and how many more.
    pub fn unreadable_summary(&self) -> String {
        let mut text: Vec<String> = self
            .unreadable
            .iter()
            .map(|u| format!("line {}: {}", u.line, u.why))
            .collect();
        let more = self.unreadable_count - self.unreadable.len();
        if more > 0 {
            text.push(format!("and {more} more"));
        }
        text.join("; ")
    }

    /// Requests logged within one second arrive spread evenly over it, in the order logged
    /// (the k-th of n at (k + ½)/n s), so a replay is the same every time; a line that gives
    /// its place within the second keeps it. A request is served for its duration less its
    /// queue wait; one that no app process served is served, if the replay's pool takes it,
    /// for the median service time of those that were.
    fn place(&mut self, mut read: Vec<LineRead>) {
        let unserved_service_nanos = median_served_nanos(&read);
        // Spread by the logged second, keeping the log's order within a second.
        read.sort_by_key(|line| line.second);
        let first = read[0].second;
        self.start_unix_s = first;
        let mut start = 0;
        while start < read.len() {
            let second = read[start].second;
            let end = start + read[start..].partition_point(|l| l.second == second);
            let lines = &read[start..end];
            let n = lines.iter().filter(|l| l.subsec_nanos.is_none()).count() as u64;
            let base = (second - first) as u64 * NANOS_PER_SEC;
            let mut k = 0;
            for line in lines {
                let within = line.subsec_nanos.map_or_else(
                    || {
                        k += 1;
                        (2 * k - 1) * NANOS_PER_SEC / (2 * n)
                    },
                    u64::from,
                );
                let logged = base + within;
                let arrival = if line.logged_at_end {
                    logged.saturating_sub(line.duration_nanos)
                } else {
                    logged
                };
                let service_nanos = match (line.app_served, unserved_service_nanos) {
                    (Some(false), Some(median)) => median,
                    _ => line.duration_nanos.saturating_sub(line.queue_nanos),
                };
                let gone_while_queued = line.client_gone && line.app_served == Some(false);
                self.requests.push(LoggedRequest {
                    arrival_nanos: arrival,
                    service_nanos,
                    gone_after_nanos: gone_while_queued.then_some(line.duration_nanos),
                });
            }
            start = end;
        }
        self.requests.sort();
    }

    /// From the first arrival to the last request's end.
    pub fn span_nanos(&self) -> u64 {
        self.requests
            .iter()
            .map(|r| r.arrival_nanos + r.service_nanos)
            .max()
            .unwrap_or(0)
    }
}

/// The median service time of the requests an app process served, if the log tells them.
fn median_served_nanos(read: &[LineRead]) -> Option<u64> {
    let mut served: Vec<u64> = read
        .iter()
        .filter(|line| line.app_served == Some(true))
        .map(|line| line.duration_nanos.saturating_sub(line.queue_nanos))
        .collect();
    if served.is_empty() {
        return None;
    }
    let middle = served.len() / 2;
    Some(*served.select_nth_unstable(middle).1)
}

const CLF_TIME: &[BorrowedFormatItem<'static>] = format_description!(
    "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
);

/// The combined format up to its last quoted field: the logged second and what follows.
fn read_combined_prefix(line: &str) -> Result<(i64, &str), String> {
    let open = line
        .find('[')
        .ok_or("no [time] field (the combined format's 4th field)")?;
    let close = line[open..]
        .find(']')
        .map(|at| open + at)
        .ok_or("the [time] field is not closed with ]")?;
    let stamp = &line[open + 1..close];
    let time = OffsetDateTime::parse(stamp, CLF_TIME).map_err(|error| {
        format!("bad time [{stamp}]: {error} (expected e.g. [10/Oct/2000:13:55:36 -0700])")
    })?;
    let rest = &line[close + 1..];
    if rest.matches('"').count() < 2 {
        return Err("no quoted request (\"GET / HTTP/1.1\") after the time".into());
    }
    let last_quote = rest.rfind('"').expect("counted above");
    Ok((time.unix_timestamp(), rest[last_quote + 1..].trim()))
}

fn read_combined(line: &str) -> Result<LineRead, String> {
    let (second, field) = read_combined_prefix(line)?;
    if field.is_empty() {
        return Err("no request time after the last quoted field (nginx: add $request_time to log_format; Apache: %D to LogFormat)".into());
    }
    if field.contains(char::is_whitespace) {
        return Err(format!(
            "\"{field}\": expected one request time after the last quoted field"
        ));
    }
    let (duration_nanos, logged_at_end) = if field.contains('.') {
        let seconds: f64 = field
            .parse()
            .map_err(|_| format!("request time \"{field}\" is not a number of seconds"))?;
        (seconds_to_nanos(seconds, field)?, true)
    } else {
        let micros: u64 = field.parse().map_err(|_| {
            format!("request time \"{field}\" is neither seconds (nginx, 0.012) nor microseconds (Apache %D, 12000)")
        })?;
        (micros.saturating_mul(1_000), false)
    };
    Ok(LineRead {
        second,
        subsec_nanos: None,
        duration_nanos,
        queue_nanos: 0,
        app_served: None,
        logged_at_end,
        client_gone: false,
    })
}

/// Seconds, as a request time is logged, to nanoseconds.
fn seconds_to_nanos(seconds: f64, field: &str) -> Result<u64, String> {
    if seconds.is_finite() && seconds >= 0.0 {
        Ok((seconds * 1e9).round() as u64)
    } else {
        Err(format!(
            "request time \"{field}\" is not a number of seconds"
        ))
    }
}

fn read_ferry(line: &str) -> Result<LineRead, String> {
    let (second, tail) = read_combined_prefix(line)?;
    let [time, pid] = tail.split_whitespace().collect::<Vec<_>>()[..] else {
        return Err(format!(
            "\"{tail}\": expected the request time and the pid after the last quoted field"
        ));
    };
    if !is_pid(pid) {
        return Err(format!("pid \"{pid}\" is neither a number nor -"));
    }
    let seconds: f64 = time
        .parse()
        .map_err(|_| format!("request time \"{time}\" is not a number of seconds"))?;
    Ok(LineRead {
        second,
        subsec_nanos: None,
        duration_nanos: seconds_to_nanos(seconds, time)?,
        queue_nanos: 0,
        app_served: Some(pid != "-"),
        logged_at_end: true,
        client_gone: false,
    })
}

/// The fields of a JSON line the replay needs; the others are ignored.
#[derive(serde::Deserialize)]
struct JsonLine {
    time: String,
    request_time: f64,
    /// Logged since the replay needed it; older logs have none.
    #[serde(default)]
    queue_time: f64,
    pid: Option<u32>,
    #[serde(default)]
    status: u16,
}

fn read_ferry_json(line: &str) -> Result<LineRead, String> {
    let json: JsonLine = serde_json::from_str(line).map_err(|error| {
        format!("not a JSON object with \"time\" and \"request_time\": {error}")
    })?;
    let time = OffsetDateTime::parse(&json.time, &Rfc3339).map_err(|error| {
        format!(
            "bad time \"{}\": {error} (expected RFC 3339, e.g. 2000-10-10T13:55:36.250Z)",
            json.time
        )
    })?;
    Ok(LineRead {
        second: time.unix_timestamp(),
        subsec_nanos: Some(time.nanosecond()),
        duration_nanos: seconds_to_nanos(json.request_time, &json.request_time.to_string())?,
        queue_nanos: seconds_to_nanos(json.queue_time, &json.queue_time.to_string())?,
        app_served: Some(json.pid.is_some()),
        logged_at_end: true,
        client_gone: json.status == 499,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_offset_moves_the_second() {
        let utc = read_combined(
            r#"h - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 0.5"#,
        )
        .unwrap();
        let west = read_combined(
            r#"h - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "-" 0.5"#,
        )
        .unwrap();
        assert_eq!(west.second - utc.second, 7 * 3600);
        assert_eq!(utc.second, 971_186_136);
    }
}

//! ferry's log: the terminal or `--log-file`, filtered by `--log-level`.

use crate::cli::LogLevel;
use std::io::Write;
use std::path::Path;

pub struct Log {
    sink: Box<dyn Write>,
    level: LogLevel,
}

impl Log {
    pub fn open(path: Option<&Path>, level: LogLevel) -> std::io::Result<Log> {
        let sink: Box<dyn Write> = match path {
            Some(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => Box::new(std::io::stderr()),
        };
        Ok(Log { sink, level })
    }

    /// A line about what ferry does (spawns, exits, restarts): shown at `notice` and above.
    pub fn line(&mut self, text: &str) {
        self.at(LogLevel::Notice, text);
    }

    /// Something the user should act on: shown unless `--log-level error`.
    pub fn warn(&mut self, text: &str) {
        self.at(LogLevel::Warn, text);
    }

    /// What an app process printed: the app's own output is always kept, whatever ferry's
    /// level, as Passenger does.
    pub fn app_output(&mut self, text: &str) {
        self.write(text);
    }

    pub fn at(&mut self, level: LogLevel, text: &str) {
        if level <= self.level {
            self.write(text);
        }
    }

    fn write(&mut self, text: &str) {
        let date = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        // A log that cannot be written must not stop the server.
        let _ = writeln!(self.sink, "[ {date} ] {text}");
        let _ = self.sink.flush();
    }
}

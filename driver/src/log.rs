//! ferry's own log: the terminal or `--log-file`.

use std::io::Write;
use std::path::Path;

pub struct Log {
    sink: Box<dyn Write>,
}

impl Log {
    pub fn open(path: Option<&Path>) -> std::io::Result<Log> {
        let sink: Box<dyn Write> = match path {
            Some(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => Box::new(std::io::stderr()),
        };
        Ok(Log { sink })
    }

    pub fn line(&mut self, text: &str) {
        let date = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        // A log that cannot be written must not stop the server.
        let _ = writeln!(self.sink, "[ {date} ] {text}");
        let _ = self.sink.flush();
    }
}

//! Plain Markdown tables, aligned so they also read well in a terminal.

pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Right-align this column (numbers).
    right: Vec<bool>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            right: headers.iter().enumerate().map(|(i, _)| i > 0).collect(),
        }
    }

    pub fn left_align(mut self, column: usize) -> Table {
        self.right[column] = false;
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.headers.len(), "row width");
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let width: Vec<usize> = (0..n)
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.headers[i].chars().count(), 3])
                    .max()
                    .unwrap_or(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, c) in cells.iter().enumerate() {
                let pad = width[i] - c.chars().count();
                if self.right[i] {
                    s += &format!(" {}{} |", " ".repeat(pad), c);
                } else {
                    s += &format!(" {}{} |", c, " ".repeat(pad));
                }
            }
            s + "\n"
        };
        let mut out = line(&self.headers);
        out += "|";
        for (w, right) in width.iter().zip(&self.right) {
            let dashes = "-".repeat(*w);
            if *right {
                out += &format!(" {}: |", &dashes[1..]);
            } else {
                out += &format!(" {dashes} |");
            }
        }
        out += "\n";
        for r in &self.rows {
            out += &line(r);
        }
        out
    }
}

/// Median of the values (mean of the middle two for an even count); None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn renders_aligned_markdown() {
        let mut t = Table::new(&["server", "req/s"]).left_align(0);
        t.row(vec!["ferry".into(), "12345".into()]);
        let text = t.render();
        assert_eq!(
            text,
            "| server | req/s |\n| ------ | ----: |\n| ferry  | 12345 |\n"
        );
    }
}

//! The figures of a benchmark run: each one a name (the `BENCH` line's), a label for the
//! table, a unit and its samples (one per run); printed as one table with the median, min
//! and max of each, then one `BENCH <name> <median> <unit>` line per figure.

/// One measured (or derived) figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// Section of the table (`engine`, `end to end`, ...).
    pub section: String,
    /// Name of the `BENCH` line.
    pub name: String,
    /// What it is, for the table.
    pub label: String,
    /// Unit (`rec/s`, `ms`, `MB`, `x`).
    pub unit: String,
    /// One value per run (a derived figure has one).
    pub samples: Vec<f64>,
}

impl Figure {
    /// A figure from its samples.
    pub fn new(section: &str, name: &str, label: &str, unit: &str, samples: Vec<f64>) -> Self {
        Self {
            section: section.into(),
            name: name.into(),
            label: label.into(),
            unit: unit.into(),
            samples,
        }
    }

    /// The median (the mean of the two middle values for an even count).
    pub fn median(&self) -> f64 {
        let s = self.sorted();
        match s.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => s[n / 2],
            n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut s: Vec<f64> = self
            .samples
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        s.sort_by(f64::total_cmp);
        s
    }

    fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }
}

/// All figures of a run, in the order they were added.
#[derive(Default)]
pub struct Report {
    pub figures: Vec<Figure>,
    /// Lines printed under the table (machine, settings, caveats).
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a figure.
    pub fn add(&mut self, figure: Figure) {
        self.figures.push(figure);
    }

    /// The median of the figure called `name`.
    pub fn median(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(Figure::median)
    }

    /// Adds `a / b` (medians) as a derived figure, when both exist.
    pub fn ratio(&mut self, section: &str, name: &str, label: &str, a: &str, b: &str) {
        if let (Some(x), Some(y)) = (self.median(a), self.median(b)) {
            self.add(Figure::new(section, name, label, "x", vec![x / y]));
        }
    }

    /// The table (Markdown) and the `BENCH` lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("| section | figure | median | min | max | unit | runs |\n");
        out.push_str("|---|---|---:|---:|---:|---|---:|\n");
        for f in &self.figures {
            let n = f.samples.len();
            let (min, max) = if n > 1 {
                (fmt(f.min()), fmt(f.max()))
            } else {
                ("".into(), "".into())
            };
            out.push_str(&format!(
                "| {} | {} | {} | {min} | {max} | {} | {n} |\n",
                f.section,
                f.label,
                fmt(f.median()),
                f.unit
            ));
        }
        out.push('\n');
        for note in &self.notes {
            out.push_str(&format!("{note}\n"));
        }
        out.push('\n');
        for f in &self.figures {
            out.push_str(&format!(
                "BENCH {} {} {}\n",
                f.name,
                plain(f.median()),
                f.unit
            ));
        }
        out
    }
}

/// A value for the table: thousands separated, few decimals.
fn fmt(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    if v.abs() >= 1000.0 {
        let s = format!("{:.0}", v.abs());
        let mut grouped = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        return if v < 0.0 {
            format!("-{grouped}")
        } else {
            grouped
        };
    }
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A value for a `BENCH` line: no separators.
fn plain(v: f64) -> String {
    if !v.is_finite() {
        "nan".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

//! Hand-written SVG charts: of throughput, one group of horizontal bars per workload and
//! thread count, one bar per engine ([`svg`]); and of a figure over time, one line per
//! engine ([`lines`], the `scale` suite's memory during its mixed run).
//!
//! Throughputs differ by orders of magnitude between workloads (an fsync per write
//! against a cached read), so each group is scaled to its own fastest engine: bars compare
//! engines within a workload, and the label at the end of each bar gives its ops/s.

use std::fmt::Write;

use crate::Measurement;
use crate::dbbench::progress::human;

const LABEL_WIDTH: f64 = 200.0;
const BAR_WIDTH: f64 = 480.0;
const VALUE_WIDTH: f64 = 150.0;
const BAR_HEIGHT: f64 = 16.0;
const GROUP_GAP: f64 = 12.0;
const TOP: f64 = 64.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// The chart of `measurements` as an SVG document, titled `title`.
#[must_use]
pub fn svg(measurements: &[Measurement], title: &str) -> String {
    let mut subjects: Vec<&str> = Vec::new();
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for m in measurements {
        if !subjects.contains(&m.subject.as_str()) {
            subjects.push(&m.subject);
        }
        if !groups.contains(&(m.workload.as_str(), m.threads)) {
            groups.push((&m.workload, m.threads));
        }
    }
    let group_height = subjects.len() as f64 * BAR_HEIGHT + GROUP_GAP;
    let width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH;
    let height = TOP + groups.len() as f64 * group_height + 10.0;

    let mut out = String::new();
    // Writing to a String cannot fail, so the results of `write!` are ignored throughout.
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        out,
        r##"<rect width="{width}" height="{height}" fill="white"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="10" y="20" font-size="15" font-weight="bold">{}</text>"##,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<text x="10" y="38" fill="#555">ops/s; each group is scaled to its fastest engine</text>"##
    );
    let mut legend_x = LABEL_WIDTH;
    for (i, subject) in subjects.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            out,
            r##"<rect x="{legend_x}" y="46" width="12" height="12" fill="{color}"/>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="56">{}</text>"##,
            legend_x + 16.0,
            escape(subject)
        );
        legend_x += 24.0 + 8.0 * subject.len() as f64;
    }
    for (g, (workload, threads)) in groups.iter().enumerate() {
        let y0 = TOP + g as f64 * group_height;
        let in_group: Vec<&Measurement> = measurements
            .iter()
            .filter(|m| m.workload == *workload && m.threads == *threads)
            .collect();
        let best = in_group.iter().map(|m| m.ops_per_sec()).fold(0.0, f64::max);
        let label_y = y0 + subjects.len() as f64 * BAR_HEIGHT / 2.0 + 4.0;
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{label_y}" text-anchor="end">{} x{threads}</text>"##,
            LABEL_WIDTH - 8.0,
            escape(workload)
        );
        for (i, subject) in subjects.iter().enumerate() {
            let Some(m) = in_group.iter().find(|m| m.subject == *subject) else {
                continue;
            };
            let rate = m.ops_per_sec();
            let length = if best > 0.0 {
                (rate / best * BAR_WIDTH).max(1.0)
            } else {
                1.0
            };
            let y = y0 + i as f64 * BAR_HEIGHT;
            let color = COLORS[i % COLORS.len()];
            let _ = writeln!(
                out,
                r##"<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1}" height="{}" fill="{color}"><title>{} {} x{threads}: {rate:.0} ops/s</title></rect>"##,
                BAR_HEIGHT - 2.0,
                escape(subject),
                escape(workload)
            );
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{}">{}</text>"##,
                LABEL_WIDTH + length + 4.0,
                y + BAR_HEIGHT - 4.0,
                human(rate)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

/// One line of a [`lines`] chart: its name in the legend and its points, `(x, y)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name in the legend.
    pub name: String,
    /// The points, in the order they are joined.
    pub points: Vec<(f64, f64)>,
}

/// A line chart of `series` as an SVG document, titled `title`, with both axes from 0 to
/// a round number at or above the largest value, ticked at round steps (1, 2 or 5 times a
/// power of ten, about five of them).
#[must_use]
pub fn lines(series: &[Series], title: &str, x_label: &str, y_label: &str) -> String {
    const LEFT: f64 = 70.0;
    const PLOT_WIDTH: f64 = 640.0;
    const PLOT_HEIGHT: f64 = 300.0;
    const TICKS: f64 = 5.0;
    let width = LEFT + PLOT_WIDTH + 30.0;
    let height = TOP + PLOT_HEIGHT + 50.0;
    let points = || series.iter().flat_map(|s| s.points.iter().copied());
    let x_step = round_step(points().map(|(x, _)| x).fold(0.0, f64::max) / TICKS);
    let y_step = round_step(points().map(|(_, y)| y).fold(0.0, f64::max) / TICKS);
    let axis_end = |step: f64, largest: f64| (largest / step).ceil().max(1.0) * step;
    let x_max = axis_end(x_step, points().map(|(x, _)| x).fold(0.0, f64::max));
    let y_max = axis_end(y_step, points().map(|(_, y)| y).fold(0.0, f64::max));
    let at = |(x, y): (f64, f64)| {
        (
            LEFT + x / x_max * PLOT_WIDTH,
            TOP + PLOT_HEIGHT - y / y_max * PLOT_HEIGHT,
        )
    };

    let mut out = String::new();
    // Writing to a String cannot fail, so the results of `write!` are ignored throughout.
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        out,
        r##"<rect width="{width}" height="{height}" fill="white"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="10" y="20" font-size="15" font-weight="bold">{}</text>"##,
        escape(title)
    );
    let mut legend_x = LEFT;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            out,
            r##"<rect x="{legend_x}" y="36" width="12" height="12" fill="{color}"/>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="46">{}</text>"##,
            legend_x + 16.0,
            escape(&s.name)
        );
        legend_x += 24.0 + 8.0 * s.name.len() as f64;
    }
    let bottom = TOP + PLOT_HEIGHT;
    let _ = writeln!(
        out,
        r##"<path d="M{LEFT} {TOP} V{bottom} H{}" fill="none" stroke="#333"/>"##,
        LEFT + PLOT_WIDTH
    );
    for tick in 0..=(x_max / x_step).round() as u32 {
        let value = f64::from(tick) * x_step;
        let (x, _) = at((value, 0.0));
        let _ = writeln!(
            out,
            r##"<text x="{x:.1}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
            bottom + 16.0,
            tick_label(value, x_step)
        );
    }
    for tick in 0..=(y_max / y_step).round() as u32 {
        let value = f64::from(tick) * y_step;
        let (_, y) = at((0.0, value));
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            LEFT - 6.0,
            y + 4.0,
            tick_label(value, y_step)
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle">{}</text>"##,
        LEFT + PLOT_WIDTH / 2.0,
        bottom + 36.0,
        escape(x_label)
    );
    let _ = writeln!(
        out,
        r##"<text x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"##,
        TOP + PLOT_HEIGHT / 2.0,
        TOP + PLOT_HEIGHT / 2.0,
        escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&point| {
                let (x, y) = at(point);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = writeln!(
            out,
            r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"><title>{}</title></polyline>"##,
            path.join(" "),
            escape(&s.name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The round step (1, 2 or 5 times a power of ten) at or above `raw`; 1 for nothing
/// positive.
fn round_step(raw: f64) -> f64 {
    if !(raw > 0.0 && raw.is_finite()) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|&m| m * power >= raw)
        .unwrap_or(10.0);
    step * power
}

/// A tick at `value` on an axis ticked every `step`, with as many decimals as the step
/// needs.
fn tick_label(value: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{value:.decimals$}")
}

/// `text` with the characters XML gives meaning to replaced by entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Checks that every tag is closed in order and that no raw `&` or `<` appears in text:
    /// enough XML well-formedness for a document made of elements, attributes and text.
    fn assert_well_formed(doc: &str) {
        let mut open: Vec<String> = Vec::new();
        let mut rest = doc;
        while let Some(start) = rest.find('<') {
            check_text(&rest[..start]);
            let end = rest[start..].find('>').expect("every tag ends") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "a tag contains '<': {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    open.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched closing tag"
                );
            } else if !tag.ends_with('/') {
                open.push(
                    tag.split_whitespace()
                        .next()
                        .expect("a tag has a name")
                        .to_string(),
                );
            }
            let quotes = tag.matches('"').count();
            assert_eq!(quotes % 2, 0, "unbalanced quotes in <{tag}>");
            rest = &rest[end + 1..];
        }
        check_text(rest);
        assert!(open.is_empty(), "unclosed tags: {open:?}");
        assert!(doc.starts_with("<svg "), "the root element is svg");
    }

    fn check_text(text: &str) {
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "a raw '&' in text: {text}"
            );
        }
    }

    fn measurement(workload: &str, subject: &str, threads: usize, ops: u64) -> Measurement {
        Measurement::new(workload, subject, threads, ops, Duration::from_secs(1))
    }

    #[test]
    fn chart_is_well_formed_and_has_a_bar_per_measurement() {
        let measurements = [
            measurement("fillrandom", "floe", 1, 900_000),
            measurement("fillrandom", "fjall", 1, 600_000),
            measurement("overwrite", "floe", 4, 1_200_000),
            measurement("overwrite", "fjall", 4, 0),
            measurement("a<b&c", "x\"y", 2, 5),
        ];
        let doc = svg(&measurements, "floe & fjall <1M keys>");
        assert_well_formed(&doc);
        assert_eq!(doc.matches("<title>").count(), measurements.len());
        // The fastest engine of a group gets the full bar width.
        assert!(doc.contains(&format!(r#"width="{BAR_WIDTH:.1}""#)));
        assert!(doc.contains("floe &amp; fjall &lt;1M keys&gt;"));
    }

    #[test]
    fn a_line_chart_is_well_formed_with_a_line_per_series() {
        let series = [
            Series {
                name: "floe".to_string(),
                points: vec![(1.0, 100.0), (2.0, 120.0), (3.0, 110.0)],
            },
            Series {
                name: "fjall & <co>".to_string(),
                points: vec![(1.0, 300.0), (2.0, 310.0)],
            },
            Series {
                name: "empty".to_string(),
                points: Vec::new(),
            },
        ];
        let doc = lines(&series, "RssAnon <mixed>", "seconds", "MiB");
        assert_well_formed(&doc);
        assert_eq!(doc.matches("<polyline").count(), series.len());
        assert!(doc.contains("fjall &amp; &lt;co&gt;"));
        assert_well_formed(&lines(&[], "nothing", "x", "y"));
        // Ticks at round steps: 0 to 400 by 100 on the y axis, 0 to 3 by 1 on the x axis.
        for tick in ["0", "100", "200", "300", "400"] {
            assert!(doc.contains(&format!(r##"text-anchor="end" fill="#555">{tick}<"##)));
        }
        assert!(doc.contains(r##"text-anchor="middle" fill="#555">3<"##));
    }

    #[test]
    fn round_steps() {
        assert_eq!(round_step(0.0), 1.0);
        assert_eq!(round_step(62.0), 100.0);
        assert_eq!(round_step(12.0), 20.0);
        assert_eq!(round_step(0.6), 1.0);
        assert!((round_step(0.03) - 0.05).abs() < 1e-12);
        assert_eq!(tick_label(0.15, 0.05), "0.15");
        assert_eq!(tick_label(200.0, 100.0), "200");
    }

    #[test]
    fn the_checker_rejects_broken_documents() {
        for broken in [
            "<svg ><g></svg>",
            "<svg >a & b</svg>",
            "<svg ><rect x=\"1/></svg>",
        ] {
            assert!(
                std::panic::catch_unwind(|| assert_well_formed(broken)).is_err(),
                "{broken}"
            );
        }
        assert_well_formed(&svg(&[], "empty"));
    }
}

//! SVG charts for parts: a histogram of a sample (a latency distribution) and line charts (a cost
//! against a size), drawn with `plotters`' SVG backend into `$FTGO_BENCH_DIR/charts/`.
//!
//! Each function answers the [`Chart`] to push into the part's `charts`.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::part::Chart;

/// Size of every chart, in SVG pixels.
const SIZE: (u32, u32) = (800, 420);
const FONT: &str = "sans-serif";

/// A chart that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("chart {file}: {reason}")]
pub struct ChartError {
    /// The file it was drawn to.
    pub file: String,
    /// Why it failed.
    pub reason: String,
}

/// A vertical line across a histogram: a percentile or a target.
#[derive(Clone, Debug)]
pub struct Marker {
    /// Its legend (`p99 412 ms`).
    pub label: String,
    /// Where, in the sample's unit.
    pub x: f64,
}

/// One line of a line chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Its legend.
    pub name: String,
    /// `(x, y)` points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// The axes of a chart.
#[derive(Clone, Debug)]
pub struct Axes {
    /// The chart's title.
    pub title: String,
    /// The x axis' description (with its unit).
    pub x: String,
    /// The y axis' description (with its unit).
    pub y: String,
}

fn failed(file: &str) -> impl Fn(String) -> ChartError + '_ {
    move |reason| ChartError {
        file: file.to_owned(),
        reason,
    }
}

fn prepare(dir: &Path, name: &str) -> Result<(String, std::path::PathBuf), ChartError> {
    let file = format!("charts/{name}.svg");
    let path = dir.join(&file);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed(&file)(e.to_string()))?;
    }
    Ok((file, path))
}

/// The chart area every chart draws in: `title` above, room for the axes' labels, `x` by `y`.
fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<Plot<'a, 'b>, String> {
    ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())
}

/// A chart of [`frame`].
type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A legend's sample of a line drawn in `color`.
fn legend_line(color: RGBAColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
}

/// Draws the legend of the series labelled on `chart`.
fn draw_legend<'a, 'b: 'a>(chart: &mut Plot<'a, 'b>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()
        .map_err(|e| e.to_string())
}

/// Draws a histogram of `samples` in `bins` equal bins, with vertical `markers`, to
/// `charts/<name>.svg` under `dir`.
pub fn histogram(
    dir: &Path,
    name: &str,
    axes: &Axes,
    samples: &[f64],
    bins: usize,
    markers: &[Marker],
) -> Result<Chart, ChartError> {
    let (file, path) = prepare(dir, name)?;
    let bins = bins.max(1);
    let top = samples
        .iter()
        .chain(markers.iter().map(|m| &m.x))
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE)
        * 1.05;
    let width = top / bins as f64;
    let mut counts = vec![0_u32; bins];
    for v in samples.iter().filter(|v| v.is_finite()) {
        let bin = ((v / width) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    let highest = f64::from(counts.iter().copied().max().unwrap_or(0).max(1)) * 1.1;
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    let draw = || -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = frame(&root, &axes.title, 0.0..top, 0.0..highest)?;
        chart
            .configure_mesh()
            .x_desc(&axes.x)
            .y_desc(&axes.y)
            .x_label_formatter(&|v| crate::report::markdown::number(*v))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 13))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &n)| {
                let x0 = i as f64 * width;
                Rectangle::new(
                    [(x0, 0.0), (x0 + width, f64::from(n))],
                    BLUE.mix(0.6).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        for (i, marker) in markers.iter().enumerate() {
            let color = Palette99::pick(i + 1).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    [(marker.x, 0.0), (marker.x, highest)],
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(&marker.label)
                .legend(legend_line(color));
        }
        if !markers.is_empty() {
            draw_legend(&mut chart)?;
        }
        root.present().map_err(|e| e.to_string())
    };
    draw().map_err(failed(&file))?;
    Ok(Chart {
        file,
        title: axes.title.clone(),
    })
}

/// Draws `series` as lines with points to `charts/<name>.svg` under `dir`; `log_x` puts x on a
/// base-10 logarithmic axis (history lengths 10 … 10,000).
pub fn lines(
    dir: &Path,
    name: &str,
    axes: &Axes,
    series: &[Series],
    log_x: bool,
) -> Result<Chart, ChartError> {
    let (file, path) = prepare(dir, name)?;
    let to_x = |x: f64| {
        if log_x {
            x.max(f64::MIN_POSITIVE).log10()
        } else {
            x
        }
    };
    let points = || series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0_f64);
    for &(x, y) in points() {
        x0 = x0.min(to_x(x));
        x1 = x1.max(to_x(x));
        y1 = y1.max(y);
    }
    if !x0.is_finite() || !x1.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y1 = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    let draw = || -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = frame(&root, &axes.title, x0..x1, 0.0..y1)?;
        let x_label = |v: &f64| {
            let x = if log_x { 10_f64.powf(*v) } else { *v };
            crate::report::markdown::number(x)
        };
        chart
            .configure_mesh()
            .x_desc(&axes.x)
            .y_desc(&axes.y)
            .x_label_formatter(&x_label)
            .label_style((FONT, 13))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, line) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let pts: Vec<(f64, f64)> = line.points.iter().map(|&(x, y)| (to_x(x), y)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(&line.name)
                .legend(legend_line(color));
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        draw_legend(&mut chart)?;
        root.present().map_err(|e| e.to_string())
    };
    draw().map_err(failed(&file))?;
    Ok(Chart {
        file,
        title: axes.title.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("ftgo-bench-chart-{name}-{}", std::process::id()))
    }

    fn axes() -> Axes {
        Axes {
            title: "Local lag".into(),
            x: "lag (ms)".into(),
            y: "commands".into(),
        }
    }

    #[test]
    fn a_histogram_is_an_svg_with_its_title_bars_and_markers() {
        let dir = scratch("histogram");
        let samples: Vec<f64> = (0..1000).map(|i| f64::from(i % 97) * 3.0).collect();
        let marker = Marker {
            label: "p99 288 ms".into(),
            x: 288.0,
        };
        let chart = histogram(&dir, "lag", &axes(), &samples, 40, &[marker]).expect("draws");
        let svg = std::fs::read_to_string(dir.join(&chart.file)).expect("written");
        std::fs::remove_dir_all(&dir).expect("cleans up");
        assert_eq!(chart.file, "charts/lag.svg");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("Local lag") && svg.contains("p99 288 ms"));
        assert!(svg.matches("<rect").count() >= 40, "one rect per bin");
    }

    #[test]
    fn a_log_x_line_chart_labels_the_real_sizes() {
        let dir = scratch("lines");
        let series = [Series {
            name: "read units".into(),
            points: vec![(10.0, 1.0), (100.0, 2.0), (1000.0, 8.0), (10000.0, 70.0)],
        }];
        let chart = lines(&dir, "load", &axes(), &series, true).expect("draws");
        let svg = std::fs::read_to_string(dir.join(&chart.file)).expect("written");
        std::fs::remove_dir_all(&dir).expect("cleans up");
        assert!(svg.contains("read units"));
        assert!(svg.contains("\n1,000\n"), "log axis in real units: {svg}");
    }
}

//! `--plot FILE.svg`: the latency distribution by percentile, on the
//! "nines" scale of HdrHistogram plots (x = -log10(1 - q): 90 % at 1, 99 %
//! at 2, 99.9 % at 3), above the throughput per second over the run.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::runner::Series;

/// Draws the two panels into an SVG file.
pub fn draw(path: &Path, title: &str, latency: &Histogram<u64>, series: &Series) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    let root = SVGBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root.titled(title, ("sans-serif", 18)).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(440);

    let points = percentile_points(latency);
    let max_x = points.last().map_or(1.0, |p| p.0).max(1.0).ceil();
    let max_y = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(&top)
        .caption("latency by percentile", ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_x, 0f64..max_y)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_labels(max_x as usize + 1)
        .x_label_formatter(&|x| nines_label(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("percentile")
        .y_desc("latency (us)")
        .draw()
        .map_err(|e| err(&e))?;
    chart.draw_series(LineSeries::new(points, &BLUE)).map_err(|e| err(&e))?;

    let max_t = series.last().map_or(1.0, |p| p.0).max(1.0);
    let max_rate = series.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&bottom)
        .caption("throughput (messages received per second)", ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_t, 0f64..max_rate)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("seconds since start")
        .y_desc("messages/s")
        .draw()
        .map_err(|e| err(&e))?;
    chart.draw_series(LineSeries::new(series.iter().copied(), &RED)).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// (nines, microseconds) along the distribution.
fn percentile_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return vec![(0.0, 0.0)];
    }
    let mut points: Vec<(f64, f64)> = h
        .iter_quantiles(4)
        .map(|v| (v.quantile_iterated_to(), v.value_iterated_to() as f64 / 1e3))
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, us)| (-(1.0 - q).log10(), us))
        .collect();
    let last = points.last().map_or(0.0, |p| p.0);
    points.push((last.max(1.0) + 0.5, h.max() as f64 / 1e3));
    points
}

/// `0` → `0%`, `1` → `90%`, `2` → `99%`, `3` → `99.9%`.
fn nines_label(x: f64) -> String {
    let q = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x - 2.0).ceil().max(0.0) as usize;
    format!("{q:.decimals$}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_labels() {
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(4.0), "99.99%");
    }

    #[test]
    fn the_svg_is_written() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for i in 1..10_000u64 {
            h.record(i * 100).unwrap();
        }
        let path = std::env::temp_dir().join(format!("ringcast-bench-plot-{}.svg", std::process::id()));
        draw(&path, "test", &h, &vec![(1.0, 100.0), (2.0, 120.0)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
        assert!(text.contains("99.9%"));
    }
}

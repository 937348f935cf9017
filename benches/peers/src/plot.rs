//! SVG charts of a run: throughput and p99 latency against tasks, and latency during outages.

use std::path::Path;

use plotters::prelude::*;

use crate::clients::Kind;
use crate::{Outage, Point, SIZES, TASKS, WORKERS};

const COLORS: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(174, 199, 232),
    RGBColor(255, 127, 14),
    RGBColor(255, 187, 120),
    RGBColor(148, 103, 189),
    RGBColor(214, 39, 40),
    RGBColor(255, 152, 150),
    RGBColor(44, 160, 44),
    RGBColor(127, 127, 127),
];

fn color(kind: Kind) -> RGBColor {
    let index = Kind::REDIS
        .iter()
        .chain(&Kind::EMBEDDED)
        .position(|k| *k == kind)
        .unwrap_or(0);
    COLORS[index % COLORS.len()]
}

/// Throughput of hits against tasks: one panel per worker count and value size.
pub fn throughput(dir: &Path, points: &[Point]) {
    panels(dir, "throughput.svg", points, "calls/s", |p| {
        p.calls_per_second
    });
}

/// p99 latency of hits against tasks.
pub fn p99(dir: &Path, points: &[Point]) {
    panels(dir, "p99.svg", points, "p99 µs", |p| {
        p.p99.as_secs_f64() * 1e6
    });
}

fn panels(dir: &Path, file: &str, points: &[Point], axis: &str, value: impl Fn(&Point) -> f64) {
    let path = dir.join(file);
    let root = SVGBackend::new(&path, (1400, 1000)).into_drawing_area();
    root.fill(&WHITE).expect("drawable");
    let areas = root.split_evenly((WORKERS.len(), SIZES.len()));
    for (index, area) in areas.iter().enumerate() {
        let workers = WORKERS[index / SIZES.len()];
        let size = SIZES[index % SIZES.len()];
        let selected: Vec<&Point> = points
            .iter()
            .filter(|p| {
                p.workers == workers
                    && p.size == size
                    && !p.write
                    && !Kind::EMBEDDED.contains(&p.kind)
            })
            .collect();
        let top = selected.iter().map(|p| value(p)).fold(1.0, f64::max) * 1.1;
        let caption = format!(
            "hits, {} values, {workers} worker{}",
            if size > 1024 { "100 KB" } else { "200 B" },
            if workers == 1 { "" } else { "s" }
        );
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d((1f64..256f64).log_scale(), 0f64..top)
            .expect("a chart");
        chart
            .configure_mesh()
            .x_desc("tasks")
            .y_desc(axis)
            .x_labels(TASKS.len())
            .draw()
            .expect("a mesh");
        for kind in Kind::REDIS {
            let series: Vec<(f64, f64)> = TASKS
                .iter()
                .filter_map(|tasks| {
                    selected
                        .iter()
                        .find(|p| p.kind == kind && p.tasks == *tasks)
                        .map(|p| (*tasks as f64, value(p)))
                })
                .collect();
            let style = ShapeStyle::from(color(kind)).stroke_width(2);
            chart
                .draw_series(LineSeries::new(series.clone(), style))
                .expect("a line")
                .label(kind.label())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart
                .draw_series(
                    series
                        .into_iter()
                        .map(|(x, y)| Circle::new((x, y), 3, style.filled())),
                )
                .expect("points");
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 11))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .expect("a legend");
    }
    root.present().expect("the chart is written");
}

/// p99 and max latency of calls during each outage, per client.
pub fn outages(dir: &Path, outages: &[Outage]) {
    let path = dir.join("outages.svg");
    let root = SVGBackend::new(&path, (1400, 500)).into_drawing_area();
    root.fill(&WHITE).expect("drawable");
    let areas = root.split_evenly((1, 2));
    for (area, frozen) in areas.iter().zip([true, false]) {
        let selected: Vec<&Outage> = outages.iter().filter(|o| o.frozen == frozen).collect();
        let top = selected
            .iter()
            .map(|o| o.max.as_secs_f64() * 1e3)
            .fold(1.0, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(
                if frozen {
                    "Redis frozen: call latency (ms)"
                } else {
                    "Redis killed: call latency (ms)"
                },
                ("sans-serif", 20),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(290)
            .build_cartesian_2d(0f64..top, 0f64..selected.len() as f64)
            .expect("a chart");
        let labels: Vec<&'static str> = selected.iter().map(|o| o.kind.label()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(selected.len() * 2 + 1)
            .y_label_formatter(&|y| {
                let index = y.floor() as usize;
                if (y - index as f64 - 0.5).abs() < 0.26 {
                    labels.get(index).copied().unwrap_or("").to_owned()
                } else {
                    String::new()
                }
            })
            .x_desc("ms (bar: p99, tick: max)")
            .draw()
            .expect("a mesh");
        for (row, outage) in selected.iter().enumerate() {
            let y = row as f64;
            let p99 = outage.p99.as_secs_f64() * 1e3;
            let max = outage.max.as_secs_f64() * 1e3;
            let fill = color(outage.kind).filled();
            chart
                .draw_series([Rectangle::new([(0.0, y + 0.2), (p99, y + 0.8)], fill)])
                .expect("a bar");
            chart
                .draw_series([PathElement::new(
                    vec![(max, y + 0.1), (max, y + 0.9)],
                    BLACK.stroke_width(2),
                )])
                .expect("a tick");
        }
    }
    root.present().expect("the chart is written");
}

//! The run's timeline as an SVG picture: live processes and busy sessions on the left axis,
//! queue length on the right (it can be far larger), faults as red vertical lines.

use crate::report::Report;
use crate::stats::Slot;
use plotters::prelude::*;
use std::path::Path;

const SIZE: (u32, u32) = (1000, 480);

pub fn write_svg(report: &Report, path: &Path) -> std::io::Result<()> {
    let svg = render_svg(report).map_err(std::io::Error::other)?;
    std::fs::write(path, svg)
}

/// The picture as SVG text.
pub fn render_svg(report: &Report) -> Result<String, String> {
    let mut svg = String::new();
    draw(report, &mut svg).map_err(|error| format!("cannot draw the timeline: {error}"))?;
    Ok(svg)
}

/// Steps through the slots: each slot's value holds across its width.
fn steps(report: &Report, pick: impl Fn(&Slot) -> f64) -> Vec<(f64, f64)> {
    let timeline = &report.timeline;
    let slot_s = timeline.slot_nanos as f64 / 1e9;
    let end_s = report.duration_nanos as f64 / 1e9;
    let mut points = Vec::with_capacity(timeline.slots.len() * 2);
    for (index, slot) in timeline.slots.iter().enumerate() {
        let from = index as f64 * slot_s;
        if from >= end_s {
            break;
        }
        let value = pick(slot);
        points.push((from, value));
        points.push(((from + slot_s).min(end_s), value));
    }
    points
}

fn draw(report: &Report, svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let end_s = (report.duration_nanos as f64 / 1e9).max(1e-9);
    let slots = &report.timeline.slots;
    let left_max = slots
        .iter()
        .map(|s| s.processes.max(s.busy))
        .max()
        .unwrap_or(0)
        .max(report.pool.max_pool_size as u32) as f64
        + 1.0;
    let queue_max = (slots.iter().map(|s| s.queue).max().unwrap_or(0) as f64 * 1.1).max(10.0);
    let caption = format!(
        "{} (seed {}): the pool over {} of virtual time",
        report.scenario, report.seed, report.duration
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0f64..end_s, 0f64..left_max)?
        .set_secondary_coord(0f64..end_s, 0f64..queue_max);
    chart
        .configure_mesh()
        .x_desc("virtual time (s)")
        .y_desc("processes, busy sessions")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE)
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("queue length")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let processes_color = RGBColor(31, 119, 180);
    let busy_color = RGBColor(44, 160, 44);
    let queue_color = RGBColor(255, 127, 14);
    let fault_color = RGBColor(214, 39, 40);
    chart
        .draw_series(LineSeries::new(
            steps(report, |s| f64::from(s.processes)),
            processes_color.stroke_width(2),
        ))?
        .label("processes")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], processes_color));
    chart
        .draw_series(LineSeries::new(
            steps(report, |s| report.timeline.busy_mean(s)),
            busy_color,
        ))?
        .label("busy sessions (mean)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], busy_color));
    chart
        .draw_secondary_series(LineSeries::new(
            steps(report, |s| f64::from(s.queue)),
            queue_color,
        ))?
        .label("queue length (right axis)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], queue_color));
    for marker in &report.markers {
        let x = marker.at_nanos as f64 / 1e9;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, 0.0), (x, left_max)],
            fault_color,
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("fault: {}", marker.label),
            (x, left_max * 0.97),
            ("sans-serif", 13).into_font().color(&fault_color),
        )))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

//! `ferry plan --svg`: every replay as a point of cost (process-hours) against p99 latency,
//! the frontier of settings no other beats on both, the target, and the recommendation.

use crate::plan::{Plan, PlanOptions, Trial};
use plotters::prelude::*;

const SIZE: (u32, u32) = (900, 520);

fn p99_ms(t: &Trial) -> f64 {
    t.p99_nanos.map_or(f64::NAN, |n| n as f64 / 1e6)
}

/// Trials no other is both cheaper and faster than, by cost.
fn frontier(trials: &[Trial]) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = trials
        .iter()
        .filter(|t| t.p99_nanos.is_some())
        .map(|t| (t.process_hours, p99_ms(t)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut best = f64::INFINITY;
    points.retain(|&(_, p99)| {
        let keep = p99 < best;
        best = best.min(p99);
        keep
    });
    points
}

pub fn render(plan: &Plan, options: &PlanOptions) -> Result<String, String> {
    let mut svg = String::new();
    draw(plan, options, &mut svg).map_err(|error| format!("cannot draw the plan: {error}"))?;
    Ok(svg)
}

fn draw(
    plan: &Plan,
    options: &PlanOptions,
    svg: &mut String,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let target_ms = options.p99.as_nanos() as f64 / 1e6;
    let shown: Vec<&Trial> = plan
        .trials
        .iter()
        .filter(|t| t.p99_nanos.is_some())
        .collect();
    let x_max = shown.iter().map(|t| t.process_hours).fold(0.0, f64::max) * 1.1 + 0.1;
    // A starved pool's p99 can be minutes: the axis stops at four times the target and such
    // points sit on its top edge, hollow.
    let y_max = shown
        .iter()
        .map(|t| p99_ms(t))
        .fold(target_ms, f64::max)
        .min(target_ms * 4.0)
        * 1.05;
    let at = |t: &Trial| (t.process_hours, p99_ms(t).min(y_max));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "ferry plan: cost against p99 ({} replays)",
                plan.trials.len()
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("process-hours")
        .y_desc("p99 latency (ms)")
        .x_label_formatter(&|x| format!("{x:.1}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE)
        .draw()?;
    let meets = RGBColor(44, 160, 44);
    let misses = RGBColor(150, 150, 150);
    let line = RGBColor(31, 119, 180);
    let target = RGBColor(214, 39, 40);
    chart
        .draw_series(LineSeries::new(
            frontier(&plan.trials),
            line.stroke_width(2),
        ))?
        .label("frontier: nothing both cheaper and faster")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, target_ms), (x_max, target_ms)],
            target,
        ))?
        .label(format!("target p99 {}", options.p99))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], target));
    chart
        .draw_series(
            shown
                .iter()
                .filter(|t| t.meets)
                .map(|t| Circle::new(at(t), 4, meets.filled())),
        )?
        .label("meets the target")
        .legend(move |(x, y)| Circle::new((x + 10, y), 4, meets.filled()));
    chart
        .draw_series(shown.iter().filter(|t| !t.meets).map(|t| {
            let style = if p99_ms(t) > y_max {
                misses.stroke_width(1)
            } else {
                misses.filled()
            };
            Circle::new(at(t), 3, style)
        }))?
        .label("misses it (p99 or 503s); hollow: p99 above the axis")
        .legend(move |(x, y)| Circle::new((x + 10, y), 3, misses.filled()));
    if let Some(best) = &plan.recommended {
        let point = at(best);
        chart.draw_series(std::iter::once(Circle::new(
            point,
            8,
            target.stroke_width(2),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("recommended: {}", best.setting()),
            point,
            ("sans-serif", 13).into_font().color(&BLACK),
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

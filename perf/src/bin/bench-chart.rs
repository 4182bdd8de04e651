//! Draws the Warren / RabbitMQ ratio per scenario as a PNG bar chart.
//!
//! Usage: `bench-chart RESULTS.json OUT.png`, where the JSON is what
//! `bench/run.py` writes: a list of `{"scenario", "unit", "warren", "rabbitmq",
//! "higher_is_better"}`.

use plotters::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Row {
    scenario: String,
    warren: f64,
    rabbitmq: Option<f64>,
    higher_is_better: bool,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 3, "usage: bench-chart RESULTS.json OUT.png");
    let rows: Vec<Row> = serde_json::from_str(&std::fs::read_to_string(&args[1])?)?;
    let ratios: Vec<(String, f64)> = rows
        .iter()
        .filter_map(|r| {
            let rabbit = r.rabbitmq.filter(|v| *v > 0.0)?;
            let ratio = if r.higher_is_better {
                r.warren / rabbit
            } else {
                rabbit / r.warren.max(1e-9)
            };
            Some((r.scenario.clone(), ratio))
        })
        .collect();
    anyhow::ensure!(!ratios.is_empty(), "no scenario has a RabbitMQ figure to compare with");
    let max = ratios.iter().map(|(_, r)| *r).fold(1.0f64, f64::max) * 1.15;
    let root = BitMapBackend::new(&args[2], (1000, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Warren vs RabbitMQ 3.10 (ratio, higher is better for Warren)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(50)
        .build_cartesian_2d((0..ratios.len()).into_segmented(), 0f64..max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(ratios.len())
        .x_label_formatter(&|x| match x {
            // Scenario numbers only: the full names overlap (README has them).
            SegmentValue::CenterOf(i) => ratios
                .get(*i)
                .map(|(n, _)| n.split('.').next().unwrap_or(n).to_string())
                .unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("scenario")
        .y_desc("Warren / RabbitMQ")
        .draw()?;
    chart.draw_series(ratios.iter().enumerate().map(|(i, (_, ratio))| {
        let color = if *ratio >= 1.0 { GREEN.mix(0.7) } else { RED.mix(0.7) };
        Rectangle::new(
            [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), *ratio)],
            color.filled(),
        )
    }))?;
    chart.draw_series(ratios.iter().enumerate().map(|(i, (_, ratio))| {
        Text::new(
            format!("{ratio:.1}x"),
            (SegmentValue::CenterOf(i), *ratio + max * 0.02),
            ("sans-serif", 16),
        )
    }))?;
    chart.draw_series(LineSeries::new(
        [(SegmentValue::Exact(0), 1.0), (SegmentValue::Exact(ratios.len()), 1.0)],
        BLACK.stroke_width(1),
    ))?;
    root.present()?;
    Ok(())
}

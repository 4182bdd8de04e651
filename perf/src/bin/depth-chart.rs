//! Draws resident memory against queue depth, Warren and RabbitMQ, as a
//! PNG line chart.
//!
//! Usage: `depth-chart DEPTH.json OUT.png`, where the JSON is what
//! `bench/depth.py` writes: `{"count", "watermark", "message_size",
//! "warren": {"points": [[depth, MiB], ...], ...}, "rabbitmq": {...}}`
//! (RabbitMQ's part is optional).

use plotters::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Run {
    points: Vec<(u64, f64)>,
}

#[derive(Deserialize)]
struct Results {
    watermark: String,
    message_size: u32,
    warren: Run,
    rabbitmq: Option<Run>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 3, "usage: depth-chart DEPTH.json OUT.png");
    let results: Results = serde_json::from_str(&std::fs::read_to_string(&args[1])?)?;
    let mut series = vec![("Warren", &results.warren, BLUE)];
    if let Some(rabbit) = &results.rabbitmq {
        series.push(("RabbitMQ 3.10", rabbit, RED));
    }
    let max_depth = series
        .iter()
        .flat_map(|(_, run, _)| run.points.iter().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        / 1e6;
    let max_mib = series
        .iter()
        .flat_map(|(_, run, _)| run.points.iter().map(|p| p.1))
        .fold(1.0_f64, f64::max)
        * 1.1;

    let root = BitMapBackend::new(&args[2], (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "Resident memory vs queue depth ({} B persistent messages, watermark {})",
        results.message_size, results.watermark
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..max_depth, 0.0..max_mib)?;
    chart
        .configure_mesh()
        .x_desc("messages in the queue (millions)")
        .y_desc("resident memory (MiB)")
        .draw()?;
    for (name, run, colour) in series {
        let points: Vec<(f64, f64)> = run.points.iter().map(|&(d, m)| (d as f64 / 1e6, m)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

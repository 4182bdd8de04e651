//! A real Prometheus server (Debian's `prometheus`, which `.ci/run`
//! installs) scrapes a real Warren, and every metric RabbitMQ's
//! "RabbitMQ-Overview" Grafana dashboard charts returns data through the
//! dashboard's own query shape: joined on `rabbitmq_identity_info` by
//! instance and job, filtered by cluster and namespace, summed by node.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lapin::options::*;
use lapin::types::FieldTable;
use serde_json::Value;

/// The gauges the dashboard charts.
const GAUGES: &[&str] = &[
    "rabbitmq_build_info",
    "rabbitmq_channels",
    "rabbitmq_connections",
    "rabbitmq_consumers",
    "rabbitmq_disk_space_available_bytes",
    "rabbitmq_global_publishers",
    "rabbitmq_process_max_fds",
    "rabbitmq_process_max_tcp_sockets",
    "rabbitmq_process_open_fds",
    "rabbitmq_process_open_tcp_sockets",
    "rabbitmq_process_resident_memory_bytes",
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked",
    "rabbitmq_queues",
    "rabbitmq_resident_memory_limit_bytes",
];

/// The counters it charts as rates.
const COUNTERS: &[&str] = &[
    "rabbitmq_channels_closed_total",
    "rabbitmq_channels_opened_total",
    "rabbitmq_connections_closed_total",
    "rabbitmq_connections_opened_total",
    "rabbitmq_global_messages_acknowledged_total",
    "rabbitmq_global_messages_confirmed_total",
    "rabbitmq_global_messages_delivered_consume_auto_ack_total",
    "rabbitmq_global_messages_delivered_consume_manual_ack_total",
    "rabbitmq_global_messages_delivered_get_auto_ack_total",
    "rabbitmq_global_messages_delivered_get_manual_ack_total",
    "rabbitmq_global_messages_get_empty_total",
    "rabbitmq_global_messages_received_confirm_total",
    "rabbitmq_global_messages_received_total",
    "rabbitmq_global_messages_redelivered_total",
    "rabbitmq_global_messages_routed_total",
    "rabbitmq_global_messages_unroutable_dropped_total",
    "rabbitmq_global_messages_unroutable_returned_total",
    "rabbitmq_queues_created_total",
    "rabbitmq_queues_declared_total",
    "rabbitmq_queues_deleted_total",
];

const NAMESPACE: &str = "warren-test";

/// Stops the Prometheus server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn query(http: &reqwest::Client, port: u16, expr: &str) -> Vec<Value> {
    let answer: Value = http
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("Prometheus answers")
        .json()
        .await
        .expect("a JSON answer");
    assert_eq!(answer["status"], "success", "{expr}: {answer}");
    answer["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Some of everything the counters count.
async fn traffic(url: &str) {
    let connection = lapin::Connection::connect(url, Default::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    channel
        .queue_declare("dash".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    for key in ["dash", "dash", "nowhere"] {
        channel
            .basic_publish(
                "".into(),
                key.into(),
                BasicPublishOptions::default(),
                b"x",
                Default::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    if let Some(m) = channel
        .basic_get("dash".into(), BasicGetOptions::default())
        .await
        .unwrap()
    {
        m.delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    let _ = channel.basic_get("dash".into(), BasicGetOptions { no_ack: true }).await;
    let _ = channel.basic_get("dash".into(), BasicGetOptions { no_ack: true }).await;
    connection.close(200, "done".into()).await.unwrap();
}

#[tokio::test]
async fn a_real_prometheus_scrapes_every_metric_the_overview_dashboard_charts() {
    let binary = std::env::var("PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    let warren = warren::start_ephemeral().await.unwrap();
    let target = warren.prometheus_addr().expect("the metrics endpoint");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: rabbitmq\n    \
             static_configs:\n      - targets: ['{target}']\n        labels:\n          namespace: {NAMESPACE}\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(&binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {binary} (Debian's prometheus package; .ci/run installs it): {e}"));
    let _server = Server(child);
    traffic(&warren.amqp_url()).await;
    let http = reqwest::Client::new();

    // Wait until the target is scraped and has a few samples.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = match http
            .get(format!("http://127.0.0.1:{port}/api/v1/query"))
            .query(&[("query", "count_over_time(up{job=\"rabbitmq\"}[1m]) >= 3")])
            .send()
            .await
        {
            Ok(r) => r
                .json::<Value>()
                .await
                .is_ok_and(|v| v["data"]["result"].as_array().is_some_and(|a| !a.is_empty())),
            Err(_) => false,
        };
        if ready {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus never scraped Warren"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The dashboard's variables come from rabbitmq_identity_info.
    let namespaces = query(&http, port, "group by (namespace) (rabbitmq_identity_info)").await;
    assert_eq!(namespaces.len(), 1);
    let clusters = query(
        &http,
        port,
        &format!("group by (rabbitmq_cluster) (rabbitmq_identity_info{{namespace=\"{NAMESPACE}\"}})"),
    )
    .await;
    let cluster = clusters[0]["metric"]["rabbitmq_cluster"].as_str().unwrap().to_string();
    let identity = format!(
        "on(instance, job) group_left(rabbitmq_cluster, rabbitmq_node) \
         rabbitmq_identity_info{{rabbitmq_cluster=\"{cluster}\", namespace=\"{NAMESPACE}\"}}"
    );
    let mut missing = Vec::new();
    for metric in GAUGES {
        let expr = format!("sum({metric} * {identity}) by(rabbitmq_node)");
        if query(&http, port, &expr).await.is_empty() {
            missing.push(expr);
        }
    }
    for metric in COUNTERS {
        let expr = format!("sum(rate({metric}[60s]) * {identity}) by(rabbitmq_node)");
        if query(&http, port, &expr).await.is_empty() {
            missing.push(expr);
        }
    }
    assert!(missing.is_empty(), "no data for:\n{}", missing.join("\n"));
    // The counters counted the traffic.
    let received = query(&http, port, "rabbitmq_global_messages_received_total").await;
    assert_eq!(received[0]["value"][1], "3", "{received:?}");
    warren.shutdown().await;
}

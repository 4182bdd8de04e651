//! The metric families, named, typed and described as RabbitMQ 3.10's
//! rabbitmq_prometheus plugin writes them: `/metrics` aggregates objects
//! (one sample per family), `/metrics/per-object` labels them by queue,
//! channel and connection, `/metrics/detailed` serves the families asked
//! for with `rabbitmq_detailed_` names. Everything is read from counters
//! the broker keeps where events happen; a scrape walks only what it
//! reports.

use std::time::{SystemTime, UNIX_EPOCH};

use warren_broker::{Admin, ChannelView, ConnectionView, MessageTotals, QueueView};

use crate::exposition::{Kind, Page};
use crate::process;

/// The version reported (RabbitMQ's, as Warren answers AMQP clients).
const VERSION: &str = "3.13.7";

/// The node's name and the cluster's (which dashboards join on).
fn labels_identity(admin: &Admin) -> (String, String) {
    (admin.node_name(), admin.cluster_name())
}

/// Families about the node itself: identity, resources, alarms, object
/// counts and churn.
fn node_families(
    page: &mut Page,
    admin: &Admin,
    connections: &[ConnectionView],
    channels: &[ChannelView],
    queues: &[QueueView],
) {
    let (node, cluster) = labels_identity(admin);
    page.family(
        "rabbitmq_identity_info",
        Kind::Untyped,
        "RabbitMQ node & cluster identity info",
    )
    .sample(
        "rabbitmq_identity_info",
        &[
            ("rabbitmq_node", &node),
            ("rabbitmq_cluster", &cluster),
            ("rabbitmq_cluster_permanent_id", &format!("warren-{cluster}")),
        ],
        1.0,
    );
    page.family(
        "rabbitmq_build_info",
        Kind::Untyped,
        "RabbitMQ & Erlang/OTP version info",
    )
    .sample(
        "rabbitmq_build_info",
        &[
            ("rabbitmq_version", VERSION),
            ("prometheus_plugin_version", VERSION),
            ("prometheus_client_version", "4.9.1"),
            ("erlang_version", "26.2"),
        ],
        1.0,
    );
    let n = admin.node();
    let process = process::figures();
    let started = n.started_at.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let uptime = SystemTime::now()
        .duration_since(n.started_at)
        .map_or(0.0, |d| d.as_secs_f64());
    page.single(
        "process_start_time_seconds",
        Kind::Gauge,
        "Start time of the process since unix epoch in seconds.",
        started.floor(),
    );
    page.single(
        "rabbitmq_erlang_uptime_seconds",
        Kind::Gauge,
        "Node uptime",
        uptime.floor(),
    );
    page.single(
        "rabbitmq_process_resident_memory_bytes",
        Kind::Gauge,
        "Memory used in bytes",
        n.memory_used as f64,
    );
    page.single(
        "rabbitmq_resident_memory_limit_bytes",
        Kind::Gauge,
        "Memory high watermark in bytes",
        n.memory_limit as f64,
    );
    page.single(
        "rabbitmq_disk_space_available_bytes",
        Kind::Gauge,
        "Disk space available in bytes",
        n.disk_free as f64,
    );
    page.single(
        "rabbitmq_disk_space_available_limit_bytes",
        Kind::Gauge,
        "Free disk space low watermark in bytes",
        n.disk_free_limit as f64,
    );
    page.single(
        "rabbitmq_alarms_memory_used_watermark",
        Kind::Untyped,
        "is 1 if VM memory watermark alarm is in effect",
        f64::from(u8::from(n.memory_alarm)),
    );
    page.single(
        "rabbitmq_alarms_free_disk_space_watermark",
        Kind::Untyped,
        "is 1 if free disk space watermark alarm is in effect",
        f64::from(u8::from(n.disk_alarm)),
    );
    page.single(
        "rabbitmq_alarms_file_descriptor_limit",
        Kind::Untyped,
        "is 1 if file descriptor limit alarm is in effect",
        0.0,
    );
    page.single(
        "rabbitmq_process_open_fds",
        Kind::Gauge,
        "Open file descriptors",
        process.open_fds as f64,
    );
    page.single(
        "rabbitmq_process_max_fds",
        Kind::Gauge,
        "Open file descriptors limit",
        process.max_fds as f64,
    );
    page.single(
        "rabbitmq_process_open_tcp_sockets",
        Kind::Gauge,
        "Open TCP sockets",
        connections.len() as f64,
    );
    page.single(
        "rabbitmq_process_max_tcp_sockets",
        Kind::Gauge,
        "Open TCP sockets limit",
        process.max_fds as f64,
    );
    page.single(
        "rabbitmq_erlang_processes_used",
        Kind::Gauge,
        "Erlang processes used",
        process.threads as f64,
    );
    page.single(
        "rabbitmq_erlang_processes_limit",
        Kind::Gauge,
        "Erlang processes limit",
        1_048_576.0,
    );
    page.single(
        "rabbitmq_erlang_scheduler_run_queue",
        Kind::Gauge,
        "Erlang scheduler run queue",
        0.0,
    );
    page.single(
        "rabbitmq_erlang_net_ticktime_seconds",
        Kind::Gauge,
        "Inter-node heartbeat interval",
        60.0,
    );
    page.single(
        "rabbitmq_connections",
        Kind::Gauge,
        "Connections currently open",
        connections.len() as f64,
    );
    page.single(
        "rabbitmq_channels",
        Kind::Gauge,
        "Channels currently open",
        channels.len() as f64,
    );
    let consumers: u64 = queues.iter().map(|q| q.consumers).sum();
    page.single(
        "rabbitmq_consumers",
        Kind::Gauge,
        "Consumers currently connected",
        consumers as f64,
    );
    page.single("rabbitmq_queues", Kind::Gauge, "Queues available", queues.len() as f64);
    let churn = admin.churn();
    page.single(
        "rabbitmq_connections_opened_total",
        Kind::Counter,
        "Total number of connections opened",
        churn.connections_opened as f64,
    );
    page.single(
        "rabbitmq_connections_closed_total",
        Kind::Counter,
        "Total number of connections closed or terminated",
        churn.connections_closed as f64,
    );
    page.single(
        "rabbitmq_channels_opened_total",
        Kind::Counter,
        "Total number of channels opened",
        churn.channels_opened as f64,
    );
    page.single(
        "rabbitmq_channels_closed_total",
        Kind::Counter,
        "Total number of channels closed",
        churn.channels_closed as f64,
    );
    page.single(
        "rabbitmq_queues_declared_total",
        Kind::Counter,
        "Total number of queues declared",
        churn.queues_declared as f64,
    );
    page.single(
        "rabbitmq_queues_created_total",
        Kind::Counter,
        "Total number of queues created",
        churn.queues_created as f64,
    );
    page.single(
        "rabbitmq_queues_deleted_total",
        Kind::Counter,
        "Total number of queues deleted",
        churn.queues_deleted as f64,
    );
}

/// The global message counters (`protocol="amqp091"`).
fn global_families(page: &mut Page, totals: &MessageTotals, connections: &[ConnectionView], consumers: u64) {
    let protocol = [("protocol", "amqp091")];
    let mut counter = |name: &str, help: &str, value: u64| {
        page.family(name, Kind::Counter, help)
            .sample(name, &protocol, value as f64);
    };
    counter(
        "rabbitmq_global_messages_received_total",
        "Total number of messages received from publishers",
        totals.received,
    );
    counter(
        "rabbitmq_global_messages_received_confirm_total",
        "Total number of messages received from publishers expecting confirmations",
        totals.confirmed,
    );
    counter(
        "rabbitmq_global_messages_routed_total",
        "Total number of messages routed to queues or streams",
        totals.routed,
    );
    counter(
        "rabbitmq_global_messages_unroutable_dropped_total",
        "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
        totals.unroutable_dropped,
    );
    counter(
        "rabbitmq_global_messages_unroutable_returned_total",
        "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
        totals.unroutable_returned,
    );
    counter(
        "rabbitmq_global_messages_confirmed_total",
        "Total number of messages confirmed to publishers",
        totals.confirmed,
    );
    counter(
        "rabbitmq_global_messages_delivered_total",
        "Total number of messages delivered to consumers",
        totals.delivered_and_got(),
    );
    counter(
        "rabbitmq_global_messages_delivered_consume_manual_ack_total",
        "Total number of messages delivered to consumers using basic.consume with manual acknowledgment",
        totals.delivered_manual_ack,
    );
    counter(
        "rabbitmq_global_messages_delivered_consume_auto_ack_total",
        "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment",
        totals.delivered_auto_ack,
    );
    counter(
        "rabbitmq_global_messages_delivered_get_manual_ack_total",
        "Total number of messages delivered to consumers using basic.get with manual acknowledgment",
        totals.get_manual_ack,
    );
    counter(
        "rabbitmq_global_messages_delivered_get_auto_ack_total",
        "Total number of messages delivered to consumers using basic.get with automatic acknowledgment",
        totals.get_auto_ack,
    );
    counter(
        "rabbitmq_global_messages_get_empty_total",
        "Total number of times basic.get operations fetched no message",
        totals.get_empty,
    );
    counter(
        "rabbitmq_global_messages_redelivered_total",
        "Total number of messages redelivered to consumers",
        totals.redelivered,
    );
    counter(
        "rabbitmq_global_messages_acknowledged_total",
        "Total number of message acknowledgements received from consumers",
        totals.acknowledged,
    );
    let publishers = connections.len() as f64;
    page.family(
        "rabbitmq_global_publishers",
        Kind::Gauge,
        "Current number of publishers",
    )
    .sample("rabbitmq_global_publishers", &protocol, publishers);
    page.family("rabbitmq_global_consumers", Kind::Gauge, "Current number of consumers")
        .sample("rabbitmq_global_consumers", &protocol, consumers as f64);
}

/// Queue families: one sample each, summed over `queues` (`labelled`:
/// one sample per queue, labelled by vhost and queue).
fn queue_families(page: &mut Page, prefix: &str, queues: &[QueueView], labelled: bool) {
    type Field = fn(&QueueView) -> f64;
    let families: [(&str, Kind, &str, Field); 11] = [
        (
            "queue_messages_ready",
            Kind::Gauge,
            "Messages ready to be delivered to consumers",
            |q| q.messages_ready as f64,
        ),
        (
            "queue_messages_unacked",
            Kind::Gauge,
            "Messages delivered to consumers but not yet acknowledged",
            |q| q.messages_unacknowledged as f64,
        ),
        (
            "queue_messages",
            Kind::Gauge,
            "Sum of ready and unacknowledged messages - total queue depth",
            |q| (q.messages_ready + q.messages_unacknowledged) as f64,
        ),
        (
            "queue_messages_ready_bytes",
            Kind::Gauge,
            "Size in bytes of ready messages",
            |q| q.messages_ready_bytes as f64,
        ),
        (
            "queue_messages_unacked_bytes",
            Kind::Gauge,
            "Size in bytes of all unacknowledged messages",
            |q| q.messages_unacknowledged_bytes as f64,
        ),
        (
            "queue_messages_bytes",
            Kind::Gauge,
            "Size in bytes of ready and unacknowledged messages",
            |q| (q.messages_ready_bytes + q.messages_unacknowledged_bytes) as f64,
        ),
        (
            "queue_messages_paged_out",
            Kind::Gauge,
            "Messages paged out to disk",
            |q| q.messages_paged_out as f64,
        ),
        (
            "queue_messages_paged_out_bytes",
            Kind::Gauge,
            "Size in bytes of messages paged out to disk",
            |q| q.messages_paged_out_bytes as f64,
        ),
        ("queue_consumers", Kind::Gauge, "Consumers on a queue", |q| {
            q.consumers as f64
        }),
        (
            "queue_consumer_utilisation",
            Kind::Gauge,
            "Same as consumer utilisation, in percent",
            |q| if q.consumers > 0 { 1.0 } else { 0.0 },
        ),
        (
            "queue_messages_published_total",
            Kind::Counter,
            "Total number of messages published to queues",
            |q| q.published as f64,
        ),
    ];
    for (suffix, kind, help, field) in families {
        let name = format!("{prefix}{suffix}");
        page.family(&name, kind, help);
        if labelled {
            for q in queues {
                page.sample(&name, &[("vhost", &q.vhost), ("queue", &q.name)], field(q));
            }
        } else {
            page.sample(&name, &[], queues.iter().map(field).sum());
        }
    }
}

/// Consumer lag, beyond RabbitMQ's families: the age of each queue's
/// oldest ready message and oldest unacknowledged delivery (0 when none),
/// or aggregated, the oldest of all.
fn lag_families(page: &mut Page, queues: &[QueueView], labelled: bool) {
    type Field = fn(&QueueView) -> Option<std::time::Duration>;
    let families: [(&str, &str, Field); 2] = [
        (
            "warren_queue_oldest_ready_message_age_seconds",
            "How long the oldest ready message of a queue has waited",
            |q| q.oldest_ready_age,
        ),
        (
            "warren_queue_oldest_unacked_delivery_age_seconds",
            "How long the oldest unacknowledged delivery of a queue has waited for its ack",
            |q| q.oldest_unacked_age,
        ),
    ];
    let seconds = |field: Field, q: &QueueView| field(q).map_or(0.0, |age| age.as_secs_f64());
    for (name, help, field) in families {
        page.family(name, Kind::Gauge, help);
        if labelled {
            for q in queues {
                page.sample(name, &[("vhost", &q.vhost), ("queue", &q.name)], seconds(field, q));
            }
        } else {
            let oldest = queues.iter().map(|q| seconds(field, q)).fold(0.0, f64::max);
            page.sample(name, &[], oldest);
        }
    }
}

/// Channel families, summed (or labelled by channel).
fn channel_families(page: &mut Page, channels: &[ChannelView], totals: &MessageTotals, labelled: bool) {
    type Field = fn(&ChannelView) -> f64;
    let gauges: [(&str, &str, Field); 3] = [
        ("rabbitmq_channel_consumers", "Consumers on a channel", |c| {
            f64::from(c.consumer_count)
        }),
        (
            "rabbitmq_channel_messages_unacked",
            "Delivered but not yet acknowledged messages",
            |c| f64::from(c.messages_unacknowledged),
        ),
        (
            "rabbitmq_channel_prefetch",
            "Total limit of unacknowledged messages for all consumers on a channel",
            |c| f64::from(c.global_prefetch_count),
        ),
    ];
    for (name, help, field) in gauges {
        page.family(name, Kind::Gauge, help);
        if labelled {
            for c in channels {
                page.sample(name, &[("channel", &c.name)], field(c));
            }
        } else {
            page.sample(name, &[], channels.iter().map(field).sum());
        }
    }
    // Message counters are kept per connection, so the channel families
    // carry the node's totals (what the aggregated page shows anyway).
    let counters: [(&str, &str, u64); 10] = [
        ("rabbitmq_channel_messages_published_total", "Total number of messages published into an exchange on a channel", totals.received),
        ("rabbitmq_channel_messages_confirmed_total", "Total number of messages published into an exchange and confirmed on the channel", totals.confirmed),
        ("rabbitmq_channel_messages_unroutable_returned_total", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", totals.unroutable_returned),
        ("rabbitmq_channel_messages_unroutable_dropped_total", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", totals.unroutable_dropped),
        ("rabbitmq_channel_get_ack_total", "Total number of messages fetched with basic.get in manual acknowledgement mode", totals.get_manual_ack),
        ("rabbitmq_channel_get_total", "Total number of messages fetched with basic.get in automatic acknowledgement mode", totals.get_auto_ack),
        ("rabbitmq_channel_messages_delivered_ack_total", "Total number of messages delivered to consumers in manual acknowledgement mode", totals.delivered_manual_ack),
        ("rabbitmq_channel_messages_delivered_total", "Total number of messages delivered to consumers in automatic acknowledgement mode", totals.delivered_auto_ack),
        ("rabbitmq_channel_messages_redelivered_total", "Total number of messages redelivered to consumers", totals.redelivered),
        ("rabbitmq_channel_messages_acked_total", "Total number of messages acknowledged by consumers", totals.acknowledged),
    ];
    for (name, help, value) in counters {
        page.single(name, Kind::Counter, help, value as f64);
    }
    page.single(
        "rabbitmq_channel_get_empty_total",
        Kind::Counter,
        "Total number of times basic.get operations fetched no message",
        totals.get_empty as f64,
    );
}

fn connection_families(page: &mut Page, connections: &[ConnectionView], labelled: bool) {
    type Figure = fn(&ConnectionView) -> u64;
    let families: [(&str, Kind, &str, Figure); 5] = [
        (
            "rabbitmq_connection_channels",
            Kind::Gauge,
            "Channels on a connection",
            |c| u64::from(c.channels),
        ),
        (
            "rabbitmq_connection_incoming_bytes_total",
            Kind::Counter,
            "Total number of bytes received on a connection",
            |c| c.traffic.received_bytes,
        ),
        (
            "rabbitmq_connection_outgoing_bytes_total",
            Kind::Counter,
            "Total number of bytes sent on a connection",
            |c| c.traffic.sent_bytes,
        ),
        (
            "rabbitmq_connection_incoming_packets_total",
            Kind::Counter,
            "Total number of packets received on a connection",
            |c| c.traffic.reads,
        ),
        (
            "rabbitmq_connection_outgoing_packets_total",
            Kind::Counter,
            "Total number of packets sent on a connection",
            |c| c.traffic.writes,
        ),
    ];
    // Per connection, or summed over the open ones as RabbitMQ's
    // aggregated metrics sum its per-connection ones.
    for (name, kind, help, figure) in families {
        page.family(name, kind, help);
        if labelled {
            for c in connections {
                page.sample(name, &[("channel", &c.name)], figure(c) as f64);
            }
        } else {
            page.sample(name, &[], connections.iter().map(|c| figure(c) as f64).sum());
        }
    }
}

/// `/metrics` (`per_object` false) or `/metrics/per-object`.
pub(crate) fn render(admin: &Admin, per_object: bool) -> String {
    let mut page = Page::default();
    let connections = admin.connections();
    let channels = admin.channels(None).unwrap_or_default();
    let queues = admin.queues(None).unwrap_or_default();
    let totals = admin.message_totals();
    node_families(&mut page, admin, &connections, &channels, &queues);
    let consumers = queues.iter().map(|q| q.consumers).sum();
    global_families(&mut page, &totals, &connections, consumers);
    queue_families(&mut page, "rabbitmq_", &queues, per_object);
    lag_families(&mut page, &queues, per_object);
    channel_families(&mut page, &channels, &totals, per_object);
    connection_families(&mut page, &connections, per_object);
    page.finish()
}

/// `/metrics/detailed`: the families asked for, for the vhosts asked for
/// (all if none), labelled per object.
pub(crate) fn render_detailed(admin: &Admin, families: &[String], vhosts: &[String]) -> String {
    let mut page = Page::default();
    let queues: Vec<QueueView> = admin
        .queues(None)
        .unwrap_or_default()
        .into_iter()
        .filter(|q| vhosts.is_empty() || vhosts.contains(&q.vhost))
        .collect();
    for family in families {
        match family.as_str() {
            "queue_coarse_metrics" | "queue_metrics" | "queue_consumer_count" => {
                queue_families(&mut page, "rabbitmq_detailed_", &queues, true);
                lag_families(&mut page, &queues, true);
            }
            "vhost_status" => {
                page.family(
                    "rabbitmq_detailed_vhost_status",
                    Kind::Gauge,
                    "Whether a given vhost is running",
                );
                for v in admin.vhosts() {
                    if vhosts.is_empty() || vhosts.contains(&v.name) {
                        page.sample("rabbitmq_detailed_vhost_status", &[("vhost", &v.name)], 1.0);
                    }
                }
            }
            "exchange_names" => {
                page.family(
                    "rabbitmq_detailed_exchange_name",
                    Kind::Gauge,
                    "Enumerates exchanges without any additional info",
                );
                for x in admin.exchanges(None).unwrap_or_default() {
                    if vhosts.is_empty() || vhosts.contains(&x.vhost) {
                        page.sample(
                            "rabbitmq_detailed_exchange_name",
                            &[("vhost", &x.vhost), ("exchange", &x.name), ("type", x.kind)],
                            1.0,
                        );
                    }
                }
            }
            "connection_churn_metrics" => {
                let churn = admin.churn();
                page.single(
                    "rabbitmq_detailed_connections_opened_total",
                    Kind::Counter,
                    "Total number of connections opened",
                    churn.connections_opened as f64,
                );
                page.single(
                    "rabbitmq_detailed_connections_closed_total",
                    Kind::Counter,
                    "Total number of connections closed or terminated",
                    churn.connections_closed as f64,
                );
                page.single(
                    "rabbitmq_detailed_channels_opened_total",
                    Kind::Counter,
                    "Total number of channels opened",
                    churn.channels_opened as f64,
                );
                page.single(
                    "rabbitmq_detailed_channels_closed_total",
                    Kind::Counter,
                    "Total number of channels closed",
                    churn.channels_closed as f64,
                );
                page.single(
                    "rabbitmq_detailed_queues_declared_total",
                    Kind::Counter,
                    "Total number of queues declared",
                    churn.queues_declared as f64,
                );
                page.single(
                    "rabbitmq_detailed_queues_created_total",
                    Kind::Counter,
                    "Total number of queues created",
                    churn.queues_created as f64,
                );
                page.single(
                    "rabbitmq_detailed_queues_deleted_total",
                    Kind::Counter,
                    "Total number of queues deleted",
                    churn.queues_deleted as f64,
                );
            }
            _ => {}
        }
    }
    page.finish()
}

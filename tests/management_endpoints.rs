//! The management API's endpoints that rabbitmqadmin v2 reaches through
//! the `rabbitmq_http_client` crate beyond those of tests/management.rs:
//! every answer must deserialise into the crate's types and say what
//! happened, against a real Warren with real AMQP connections (lapin).

use std::time::Duration;

use lapin::options::*;
use lapin::types::FieldTable;
use rabbitmq_http_client::api::Client;
use rabbitmq_http_client::commons::{BindingDestinationType, MessageTransferAcknowledgementMode, PolicyTarget};
use rabbitmq_http_client::requests::{
    Amqp091ShovelDestinationParams, Amqp091ShovelParams, Amqp091ShovelSourceParams, BindingDeletionParams,
    ExchangeParams, Permissions, PolicyParams, TopicPermissions, UserParams, VirtualHostParams,
};
use serde_json::{json, Map, Value};

type Api = Client<String, &'static str, &'static str>;

fn client(warren: &warren::Warren) -> Api {
    let endpoint = warren.management_url().trim_end_matches('/').to_string();
    Client::new(endpoint, "guest", "guest")
}

/// Polls `check` until it holds (or fails after 10 s).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn node_cluster_and_users_endpoints() {
    let warren = warren::start_ephemeral().await.unwrap();
    let api = client(&warren);
    let node = warren.admin().node_name();
    assert_eq!(api.get_node_info(&node).await.unwrap().name, node);
    assert!(api.get_node_info("rabbit@elsewhere").await.is_err());
    assert_eq!(api.get_cluster_name().await.unwrap().name, node);
    api.set_cluster_name("warren-east").await.unwrap();
    assert_eq!(api.get_cluster_name().await.unwrap().name, "warren-east");
    assert_eq!(api.overview().await.unwrap().cluster_name, "warren-east");

    for name in ["loner", "gone-1", "gone-2"] {
        let hash = rabbitmq_http_client::password_hashing::base64_encoded_salted_password_hash_sha256(
            &rabbitmq_http_client::password_hashing::salt(),
            "pw",
        );
        api.create_user(&UserParams {
            name,
            password_hash: &hash,
            tags: "",
        })
        .await
        .unwrap();
    }
    let without: Vec<String> = api
        .list_users_without_permissions()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert!(
        without.contains(&"loner".to_string()) && !without.contains(&"guest".to_string()),
        "{without:?}"
    );
    api.delete_users(vec!["gone-1", "gone-2"]).await.unwrap();
    let users: Vec<String> = api.list_users().await.unwrap().into_iter().map(|u| u.name).collect();
    assert!(!users.iter().any(|u| u.starts_with("gone-")), "{users:?}");

    let permissions = api.list_permissions_of("guest").await.unwrap();
    assert_eq!(permissions.len(), 1);
    assert_eq!(permissions[0].vhost, "/");
    api.declare_topic_permissions(&TopicPermissions {
        user: "loner",
        vhost: "/",
        write: "^orders\\.",
        read: ".*",
        exchange: "amq.topic",
    })
    .await
    .unwrap();
    assert_eq!(api.list_topic_permissions().await.unwrap().len(), 1);
    assert_eq!(api.list_topic_permissions_in("/").await.unwrap().len(), 1);
    let of_user = api.list_topic_permissions_of("loner").await.unwrap();
    assert_eq!(of_user[0].write, "^orders\\.");
    let one = api.get_topic_permissions_of("/", "loner").await.unwrap();
    assert_eq!((one.exchange.as_str(), one.read.as_str()), ("amq.topic", ".*"));
    api.clear_topic_permissions("/", "loner", false).await.unwrap();
    assert!(api.list_topic_permissions().await.unwrap().is_empty());
    assert!(api.clear_topic_permissions("/", "loner", false).await.is_err());
    api.clear_topic_permissions("/", "loner", true).await.unwrap();
    warren.shutdown().await;
}

#[tokio::test]
async fn exchanges_bindings_and_exchange_to_exchange_routes() {
    let warren = warren::start_ephemeral().await.unwrap();
    let api = client(&warren);
    api.create_vhost(&VirtualHostParams::named("shop")).await.unwrap();
    api.declare_permissions(&Permissions {
        user: "guest",
        vhost: "shop",
        configure: ".*",
        read: ".*",
        write: ".*",
    })
    .await
    .unwrap();
    for name in ["orders.in", "orders.eu"] {
        api.declare_exchange("shop", &ExchangeParams::durable_topic(name, None))
            .await
            .unwrap();
    }
    api.declare_queue(
        "shop",
        &rabbitmq_http_client::requests::QueueParams::new_durable_classic_queue("eu-orders", None),
    )
    .await
    .unwrap();
    api.bind_exchange("shop", "orders.eu", "orders.in", Some("eu.#"), None)
        .await
        .unwrap();
    api.bind_queue("shop", "eu-orders", "orders.eu", Some("#"), None)
        .await
        .unwrap();

    let names: Vec<String> = api
        .list_exchanges_in("shop")
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert!(names.contains(&"orders.in".to_string()) && names.contains(&"amq.topic".to_string()));
    assert!(api.list_exchanges().await.unwrap().len() > names.len(), "every vhost's");
    let from = api
        .list_exchange_bindings_with_source("shop", "orders.in")
        .await
        .unwrap();
    assert_eq!(from.len(), 1);
    assert_eq!(from[0].destination, "orders.eu");
    assert_eq!(from[0].destination_type, BindingDestinationType::Exchange);
    let to = api
        .list_exchange_bindings_with_destination("shop", "orders.eu")
        .await
        .unwrap();
    assert_eq!(to.len(), 1);
    assert_eq!(to[0].routing_key, "eu.#");
    let in_shop = api.list_bindings_in("shop").await.unwrap();
    assert!(in_shop
        .iter()
        .any(|b| b.destination == "eu-orders" && b.source == "orders.eu"));
    assert!(api.list_bindings().await.unwrap().len() >= in_shop.len());

    // A message follows the exchange-to-exchange binding.
    let routed = api
        .publish_message("shop", "orders.in", "eu.created", "order 1", Default::default())
        .await
        .unwrap();
    assert!(routed.routed);
    assert_eq!(api.get_queue_info("shop", "eu-orders").await.unwrap().message_count, 1);

    let properties_key = from[0].properties_key.clone().unwrap_or_default();
    api.delete_binding(
        &BindingDeletionParams {
            virtual_host: "shop",
            source: "orders.in",
            destination: "orders.eu",
            destination_type: BindingDestinationType::Exchange,
            routing_key: "eu.#",
            arguments: None,
        },
        false,
    )
    .await
    .unwrap();
    assert!(api
        .list_exchange_bindings_with_source("shop", "orders.in")
        .await
        .unwrap()
        .is_empty());
    assert!(!properties_key.is_empty());
    let routed = api
        .publish_message("shop", "orders.in", "eu.created", "order 2", Default::default())
        .await
        .unwrap();
    assert!(!routed.routed, "unbound");

    // A vhost's definitions imported into another.
    api.create_vhost(&VirtualHostParams::named("shop-copy")).await.unwrap();
    let definitions = api.export_vhost_definitions_as_data("shop").await.unwrap();
    let document = serde_json::to_value(&definitions).unwrap();
    api.import_vhost_definitions("shop-copy", document).await.unwrap();
    let copied: Vec<String> = api
        .list_exchanges_in("shop-copy")
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert!(copied.contains(&"orders.eu".to_string()), "{copied:?}");
    warren.shutdown().await;
}

#[tokio::test]
async fn connections_and_channels_by_name_vhost_and_user() {
    let warren = warren::start_ephemeral().await.unwrap();
    let api = client(&warren);
    let connection = lapin::Connection::connect(&warren.amqp_url(), Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare("watched".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    eventually("the connection to be listed", || {
        let api = &api;
        async move { !api.list_connections_in("/").await.unwrap().is_empty() }
    })
    .await;
    let listed = api.list_connections_in("/").await.unwrap();
    let name = listed[0].name.clone();
    let info = api.get_connection_info(&name).await.unwrap();
    assert_eq!(info.name, name);
    assert_eq!(info.protocol, "AMQP 0-9-1");
    assert_eq!(api.list_user_connections("guest").await.unwrap().len(), 1);
    let channels = api.list_channels_on(&name).await.unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!(api.list_channels_in("/").await.unwrap().len(), 1);
    let one = api.get_channel_info(&channels[0].name).await.unwrap();
    assert_eq!(one.connection_details.name, name);

    api.close_user_connections("guest", Some("maintenance"), false)
        .await
        .unwrap();
    eventually("the connection to close", || {
        let connection = &connection;
        async move { !connection.status().connected() }
    })
    .await;
    eventually("no connection listed", || {
        let api = &api;
        async move { api.list_connections().await.unwrap().is_empty() }
    })
    .await;
    warren.shutdown().await;
}

#[tokio::test]
async fn policies_parameters_limits_and_shovels() {
    let warren = warren::start_ephemeral().await.unwrap();
    let api = client(&warren);
    let mut definition = Map::new();
    definition.insert("max-length".into(), json!(100));
    api.declare_operator_policy(
        &PolicyParams::new("/", "cap", "^capped", definition.clone())
            .apply_to(PolicyTarget::Queues)
            .priority(1),
    )
    .await
    .unwrap();
    assert_eq!(api.list_operator_policies().await.unwrap().len(), 1);
    assert_eq!(api.list_operator_policies_in("/").await.unwrap()[0].name, "cap");
    let cap = api.get_operator_policy("/", "cap").await.unwrap();
    assert_eq!(cap.pattern, "^capped");
    api.declare_policy(&PolicyParams::new("/", "ttl", "^ttl", {
        let mut d = Map::new();
        d.insert("message-ttl".into(), json!(1000));
        d
    }))
    .await
    .unwrap();
    assert_eq!(api.list_policies().await.unwrap().len(), 1, "user policies only");

    api.set_vhost_limit(
        "/",
        rabbitmq_http_client::requests::EnforcedLimitParams::new(
            rabbitmq_http_client::commons::VirtualHostLimitTarget::MaxQueues,
            500,
        ),
    )
    .await
    .unwrap();
    let limits = api.list_all_vhost_limits().await.unwrap();
    assert_eq!(limits.len(), 1);
    assert_eq!(limits[0].vhost, "/");
    api.set_user_limit(
        "guest",
        rabbitmq_http_client::requests::EnforcedLimitParams::new(
            rabbitmq_http_client::commons::UserLimitTarget::MaxChannels,
            64,
        ),
    )
    .await
    .unwrap();
    assert_eq!(api.list_all_user_limits().await.unwrap()[0].username, "guest");

    // A shovel declared as rabbitmqadmin declares it, listed as a runtime
    // parameter and as a shovel, moving what is published to its source.
    api.declare_queue(
        "/",
        &rabbitmq_http_client::requests::QueueParams::new_durable_classic_queue("parked", None),
    )
    .await
    .unwrap();
    api.declare_amqp091_shovel(Amqp091ShovelParams {
        name: "unpark",
        vhost: "/",
        acknowledgement_mode: MessageTransferAcknowledgementMode::WhenConfirmed,
        reconnect_delay: Some(5),
        source: Amqp091ShovelSourceParams::predeclared_queue_source("amqp://", "parked"),
        destination: Amqp091ShovelDestinationParams::queue_destination("amqp://", "work"),
    })
    .await
    .unwrap();
    let parameters = api.list_runtime_parameters().await.unwrap();
    assert_eq!(parameters.len(), 1);
    assert_eq!(parameters[0].component, "shovel");
    assert_eq!(
        api.list_runtime_parameters_of_component("shovel").await.unwrap().len(),
        1
    );
    eventually("the shovel to run", || {
        let api = &api;
        async move {
            let shovels = api.list_shovels().await.unwrap();
            shovels.len() == 1 && format!("{:?}", shovels[0].state).to_lowercase().contains("running")
        }
    })
    .await;
    api.publish_message("/", "", "parked", "moved", Default::default())
        .await
        .unwrap();
    eventually("the message to move", || {
        let api = &api;
        async move {
            api.get_queue_info("/", "work")
                .await
                .map(|q| q.message_count == 1)
                .unwrap_or(false)
        }
    })
    .await;
    api.delete_shovel("/", "unpark", false).await.unwrap();
    assert!(api.list_shovels().await.unwrap().is_empty());
    assert!(api.delete_shovel("/", "unpark", false).await.is_err());
    api.delete_shovel("/", "unpark", true).await.unwrap();
    // A predeclared source that does not exist: the shovel says why.
    api.declare_amqp091_shovel(Amqp091ShovelParams {
        name: "broken",
        vhost: "/",
        acknowledgement_mode: MessageTransferAcknowledgementMode::WhenConfirmed,
        reconnect_delay: None,
        source: Amqp091ShovelSourceParams::predeclared_queue_source("amqp://", "no-such-queue"),
        destination: Amqp091ShovelDestinationParams::queue_destination("amqp://", "work"),
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    eventually("the shovel to terminate", || {
        let http = &http;
        let url = format!("{}shovels/vhost/%2F/broken", warren.management_url());
        async move {
            let status: Value = http
                .get(&url)
                .basic_auth("guest", Some("guest"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            status[0]["state"] == json!("terminated")
                && status[0]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("no-such-queue"))
        }
    })
    .await;
    warren.shutdown().await;
}

/// The health checks rabbitmqadmin and Kubernetes probes call that no
/// other test reaches, answered as RabbitMQ 3.10 answers them.
#[tokio::test]
async fn the_remaining_health_checks_answer_as_rabbitmq() {
    let warren = warren::start_ephemeral().await.unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let url = format!("{}{path}", warren.management_url());
        let http = http.clone();
        async move {
            let response = http.get(url).basic_auth("guest", Some("guest")).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(get("health/checks/virtual-hosts").await, (200, json!({"status": "ok"})));
    let single = json!({"status": "ok", "reason": "single node cluster"});
    assert_eq!(
        get("health/checks/node-is-quorum-critical").await,
        (200, single.clone())
    );
    assert_eq!(get("health/checks/node-is-mirror-sync-critical").await, (200, single));
    assert_eq!(get("aliveness-test/%2F").await, (200, json!({"status": "ok"})));
    assert_eq!(
        get("aliveness-test/no-such-vhost").await,
        (404, json!({"error": "Object Not Found", "reason": "Not Found"}))
    );
    // Without TLS nothing can expire.
    assert_eq!(
        get("health/checks/certificate-expiration/1/months").await,
        (200, json!({"status": "ok"}))
    );
    warren.shutdown().await;
}

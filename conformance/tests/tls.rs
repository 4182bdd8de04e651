//! AMQP over TLS with certificates made at test time (rcgen): round trips
//! through lapin and pika, client certificates verified against a CA, the
//! EXTERNAL mechanism logging in as the certificate's subject, and a
//! broker with no plain listener.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use lapin::options::*;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::FieldTable;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA, a server certificate for localhost/127.0.0.1 and a client
/// certificate, written as PEM files in a fresh directory.
struct Certificates {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_pem: String,
    client_key_pem: String,
}

/// The client certificate's subject as RabbitMQ names it: RFC 4514, the
/// last RDN of the certificate first (rcgen writes CN before O; `openssl
/// x509 -subject -nameopt RFC2253` prints the same string).
const CLIENT_DN: &str = "O=Warren tests,CN=tls-client";

impl Certificates {
    fn generate() -> Certificates {
        Certificates::generate_until(None)
    }

    /// With the server's certificate valid until January 1st of `year`.
    fn generate_until(year: Option<i32>) -> Certificates {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "Warren test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        if let Some(year) = year {
            server_params.not_after = rcgen::date_time_ymd(year, 1, 1);
        }
        let server = server_params.signed_by(&server_key, &issuer).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(DnType::OrganizationName, "Warren tests");
        client_params.distinguished_name.push(DnType::CommonName, "tls-client");
        let client = client_params.signed_by(&client_key, &issuer).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", &ca.pem());
        write("server.pem", &server.pem());
        write("server.key", &server_key.serialize_pem());
        write("client.pem", &client.pem());
        write("client.key", &client_key.serialize_pem());
        Certificates {
            ca_pem: ca.pem(),
            client_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn settings(&self, client_ca: bool, required: bool) -> warren::TlsSettings {
        warren::TlsSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            ca: client_ca.then(|| self.path("ca.pem")),
            fail_if_no_peer_cert: required,
        }
    }
}

async fn start(certs: &Certificates, client_ca: bool, required: bool, plain: bool) -> warren::Warren {
    let config = warren::BrokerConfig {
        tls: Some(certs.settings(client_ca, required)),
        plain_listener: plain,
        ..warren::ephemeral_config()
    };
    warren::start(config).await.unwrap()
}

fn amqps_url(warren: &warren::Warren, credentials: &str, query: &str) -> String {
    let port = warren.tls_addr().expect("a TLS listener").port();
    format!("amqps://{credentials}localhost:{port}/%2f{query}")
}

fn trust(certs: &Certificates, identity: bool) -> OwnedTLSConfig {
    OwnedTLSConfig {
        identity: identity.then(|| OwnedIdentity::PKCS8 {
            pem: certs.client_pem.clone().into_bytes(),
            key: certs.client_key_pem.clone().into_bytes(),
        }),
        cert_chain: Some(certs.ca_pem.clone()),
    }
}

async fn connect(url: &str, tls: OwnedTLSConfig) -> lapin::Result<lapin::Connection> {
    let runtime = lapin::runtime::default_runtime()?;
    lapin::Connection::connect_with_config(url, Default::default(), tls, runtime).await
}

async fn round_trip(connection: &lapin::Connection, queue: &str) -> Vec<u8> {
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            b"over tls",
            Default::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let delivery = consumer.next().await.unwrap().unwrap();
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    delivery.data
}

#[tokio::test]
async fn lapin_round_trips_over_tls_and_plain_still_works() {
    let certs = Certificates::generate();
    let warren = start(&certs, false, false, true).await;
    let url = amqps_url(&warren, "guest:guest@", "");
    let connection = connect(&url, trust(&certs, false)).await.unwrap();
    assert_eq!(round_trip(&connection, "tls-q").await, b"over tls");
    let plain = lapin::Connection::connect(&warren.amqp_url(), Default::default())
        .await
        .unwrap();
    assert_eq!(round_trip(&plain, "plain-q").await, b"over tls");
    // The management API says which connection is TLS.
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!("{}connections", warren.management_url()))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tls_flags: Vec<bool> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ssl"].as_bool().unwrap())
        .collect();
    assert_eq!(tls_flags.iter().filter(|t| **t).count(), 1, "{listed}");
    warren.shutdown().await;
}

#[tokio::test]
async fn external_logs_in_as_the_client_certificate_subject() {
    let certs = Certificates::generate();
    let warren = start(&certs, true, false, true).await;
    let admin = warren.admin();
    admin.put_user(CLIENT_DN, warren::PasswordSpec::None, &[]).unwrap();
    admin.set_permissions("/", CLIENT_DN, ".*", ".*", ".*").unwrap();
    let url = amqps_url(&warren, "", "?auth_mechanism=external");
    let connection = connect(&url, trust(&certs, true))
        .await
        .expect("EXTERNAL with a verified client certificate");
    assert_eq!(round_trip(&connection, "external-q").await, b"over tls");
    let listed = admin.connections();
    assert!(listed
        .iter()
        .any(|c| c.user == CLIENT_DN && c.auth_mechanism == "EXTERNAL" && c.tls));
    // Without a certificate, EXTERNAL is not offered: the login fails.
    let refused = connect(&url, trust(&certs, false)).await;
    assert!(refused.is_err());
    // A user without a password cannot log in with PLAIN.
    let user = CLIENT_DN.replace(',', "%2C").replace(' ', "%20").replace('=', "%3D");
    let plain = amqps_url(&warren, &format!("{user}:@"), "");
    assert!(connect(&plain, trust(&certs, false)).await.is_err());
    warren.shutdown().await;
}

#[tokio::test]
async fn a_required_client_certificate_refuses_clients_without_one() {
    let certs = Certificates::generate();
    let warren = start(&certs, true, true, false).await;
    assert_eq!(warren.local_addr(), warren.tls_addr().unwrap(), "no plain listener");
    let url = amqps_url(&warren, "guest:guest@", "");
    let without = connect(&url, trust(&certs, false)).await;
    assert!(without.is_err(), "connected without a client certificate");
    let with = connect(&url, trust(&certs, true)).await.unwrap();
    assert_eq!(round_trip(&with, "required-q").await, b"over tls");
    warren.shutdown().await;
}

/// pika (Python's ssl module) over TLS, with and without EXTERNAL.
#[tokio::test]
async fn pika_round_trips_over_tls() {
    let certs = Certificates::generate();
    let warren = start(&certs, true, false, true).await;
    let admin = warren.admin();
    admin.put_user(CLIENT_DN, warren::PasswordSpec::None, &[]).unwrap();
    admin.set_permissions("/", CLIENT_DN, ".*", ".*", ".*").unwrap();
    let port = warren.tls_addr().unwrap().port().to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tls/pika_tls.py");
    let output = tokio::task::spawn_blocking(move || {
        warren_conformance::python::python()
            .arg(&script)
            .arg(&port)
            .arg(certs.dir.path())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        vec!["plain over tls: b'pika over tls'", "external: b'pika external'"]
    );
    warren.shutdown().await;
}

/// `/api/health/checks/certificate-expiration/{n}/{unit}` reads the
/// certificates in use: the server's, valid until January 1st two years
/// from now, expires within 3 years but not within 1.
#[tokio::test]
async fn the_certificate_expiration_check_reads_the_certificates_in_use() {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let year = 1970 + (seconds / 31_556_952) as i32;
    let certs = Certificates::generate_until(Some(year + 2));
    let warren = start(&certs, true, false, true).await;
    let http = reqwest::Client::new();
    let check = |within: &str| {
        let url = format!(
            "{}health/checks/certificate-expiration/{within}",
            warren.management_url()
        );
        let http = http.clone();
        async move {
            let response = http.get(url).basic_auth("guest", Some("guest")).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = check("1/years").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{body}");
    let (status, body) = check("3/years").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "failed");
    assert_eq!(
        body["expired"].as_array().map(Vec::len),
        Some(1),
        "only the server's: {body}"
    );
    let (status, body) = check("1/fortnights").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["reason"],
        "Time unit not recognised. Supported units: days, weeks, months, years."
    );
    warren.shutdown().await;
}

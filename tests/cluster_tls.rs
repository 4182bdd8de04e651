//! TLS on the cluster port, through three real `warren` processes with
//! certificates made at test time (rcgen): the members form a cluster and
//! replicate a quorum queue over TLS; a caller speaking plain HTTP, one
//! without a certificate and one whose certificate another CA signed get
//! no answer, while a caller with a member's certificate does; a member
//! given unusable TLS files refuses to start, saying which.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::Cluster;
use common::cluster_clients::{amqp, consume, declare, leader_seen_by, next_delivery, publish_confirmed, quorum_args};
use common::Warren;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA and, for each member, a certificate naming its address, as PEM
/// files in one directory; plus an impostor's certificate for the first
/// member's address, signed by a CA of its own.
struct Certificates {
    dir: tempfile::TempDir,
}

fn certificate_authority(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let ca = params.self_signed(&key).unwrap();
    (ca, Issuer::new(params, key))
}

impl Certificates {
    fn generate(cluster: &Cluster) -> Certificates {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let sign = |issuer: &Issuer<'static, KeyPair>, name: &str, ip: String| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![ip]).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.signed_by(&key, issuer).unwrap();
            write(&format!("{name}.pem"), &cert.pem());
            write(&format!("{name}.key"), &key.serialize_pem());
        };
        let (ca, issuer) = certificate_authority("Warren cluster CA");
        write("ca.pem", &ca.pem());
        for node in &cluster.nodes {
            sign(&issuer, &node.name, node.ip.to_string());
        }
        let (_, impostor_issuer) = certificate_authority("Another CA");
        sign(&impostor_issuer, "impostor", cluster.nodes[0].ip.to_string());
        Certificates { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The arguments that give member `name` its certificate.
    fn arguments(&self, name: &str) -> Vec<String> {
        vec![
            "--cluster-tls-cert".into(),
            self.path(&format!("{name}.pem")).display().to_string(),
            "--cluster-tls-key".into(),
            self.path(&format!("{name}.key")).display().to_string(),
            "--cluster-tls-ca".into(),
            self.path("ca.pem").display().to_string(),
        ]
    }
}

fn start(cluster: &Cluster, certs: &Certificates, index: usize, data: &Path) -> Warren {
    let extra = certs.arguments(&cluster.nodes[index].name);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    cluster.start_with(index, data, &extra)
}

/// What a caller gets back from the cluster port for one plain HTTP
/// request sent over TLS (trusting `ca`, showing `identity`): the status
/// line, or None when the port let nothing through.
async fn status_line(port: SocketAddr, ca: &Path, identity: Option<(&Path, &Path)>) -> Option<String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            builder
                .with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap())
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let socket = tokio::net::TcpStream::connect(port).await.unwrap();
    let name = ServerName::IpAddress(port.ip().into());
    // Under TLS 1.3 a refused client certificate shows only when the
    // client reads: the handshake itself may seem to succeed.
    let mut stream = connector.connect(name, socket).await.ok()?;
    let request = "POST /status HTTP/1.1\r\nhost: member\r\ncontent-length: 0\r\n\r\n";
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = vec![0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the port answers or closes")
        .ok()?;
    let text = String::from_utf8_lossy(&answer[..read]).into_owned();
    text.lines().next().filter(|line| !line.is_empty()).map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_replicate_over_tls_and_the_port_refuses_other_callers() {
    let data = tempfile::tempdir().unwrap();
    let cluster = Cluster::new(3);
    let certs = Certificates::generate(&cluster);
    let nodes: Vec<Warren> = (0..3).map(|i| start(&cluster, &certs, i, data.path())).collect();
    nodes[0].wait_for_log("(TLS)");
    let http = reqwest::Client::new();
    leader_seen_by(&http, &nodes[0], 3).await;

    // A quorum queue declared on one member, published to through a
    // second, consumed through the third: every step crossed the port.
    let (_c1, ch1) = amqp(&nodes[0]).await;
    declare(&ch1, "over-tls", quorum_args(&[])).await;
    let (_c2, ch2) = amqp(&nodes[1]).await;
    ch2.confirm_select(Default::default()).await.unwrap();
    publish_confirmed(&ch2, "over-tls", b"sealed").await;
    let (_c3, ch3) = amqp(&nodes[2]).await;
    let mut consumer = consume(&ch3, "over-tls").await;
    let delivery = next_delivery(&mut consumer, Duration::from_secs(20)).await;
    assert_eq!(delivery.data, b"sealed");

    let port = cluster.nodes[0].listen;
    let ca = certs.path("ca.pem");
    // A member's certificate gets an HTTP answer (409: no roster given),
    // which shows the calls below could have been answered.
    let member = (certs.path("n2.pem"), certs.path("n2.key"));
    let answer = status_line(port, &ca, Some((&member.0, &member.1))).await;
    assert!(
        answer.as_deref().is_some_and(|line| line.starts_with("HTTP/1.1 409")),
        "{answer:?}"
    );
    // No certificate, or one another CA signed: nothing.
    assert_eq!(status_line(port, &ca, None).await, None);
    let impostor = (certs.path("impostor.pem"), certs.path("impostor.key"));
    assert_eq!(status_line(port, &ca, Some((&impostor.0, &impostor.1))).await, None);
    // Plain HTTP: no HTTP answer either.
    let plain = http.post(format!("http://{port}/status")).send().await;
    assert!(plain.is_err(), "{plain:?}");
}

#[test]
fn a_member_with_unusable_tls_files_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let cluster = Cluster::new(3);
    let certs = Certificates::generate(&cluster);
    let node = &cluster.nodes[0];
    let missing = certs.path("missing.key").display().to_string();
    let mut arguments = certs.arguments(&node.name);
    arguments[3] = missing.clone();
    let listen = node.listen.to_string();
    let mut args = vec![
        "--node-name",
        &node.name,
        "--cluster-listen",
        &listen,
        "--cluster-peers",
        &cluster.peers,
    ];
    args.extend(arguments.iter().map(String::as_str));
    let failed = Warren::fail_to_start(data.path(), &args);
    assert!(!failed.status.success());
    assert!(failed.stderr.contains(&missing), "{}", failed.stderr);
    // Only part of the TLS settings: refused as a setting.
    let args = vec![
        "--node-name",
        &node.name,
        "--cluster-listen",
        &listen,
        "--cluster-peers",
        &cluster.peers,
        "--cluster-tls-ca",
        &arguments[5],
    ];
    let failed = Warren::fail_to_start(data.path(), &args);
    assert!(failed.stderr.contains("cluster_tls_cert"), "{}", failed.stderr);
}

//! TLS for AMQP connections (RabbitMQ's `listeners.ssl`), with rustls:
//! the server certificate and key, and, when a CA is given, client
//! certificates requested and verified against it (required with
//! `fail_if_no_peer_cert`). A verified client certificate's subject is the
//! user name of the EXTERNAL mechanism, as `rabbitmq_auth_mechanism_ssl`
//! takes it by default (the distinguished name, RFC 4514).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;

/// Where TLS connections are accepted, and with what.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub listen: std::net::SocketAddr,
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// CA certificates (PEM) client certificates are verified against;
    /// None: clients are not asked for one.
    pub ca: Option<PathBuf>,
    /// Refuse clients without a certificate (with `ca`).
    pub fail_if_no_peer_cert: bool,
}

fn context(path: &Path) -> impl Fn(String) -> io::Error + '_ {
    move |e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
}

/// The certificates of a PEM file (a chain, or a CA bundle); an error
/// naming the file when it has none or cannot be read.
pub fn read_certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| context(path)(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| context(path)(e.to_string()))?;
    if certs.is_empty() {
        return Err(context(path)("no certificate in the file".into()));
    }
    Ok(certs)
}

/// The private key of a PEM file, its error naming the file.
pub fn read_private_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| context(path)(e.to_string()))
}

/// The rustls configuration for `settings` (TLS 1.2 and 1.3).
pub(crate) fn server_config(settings: &TlsSettings) -> io::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = read_certificates(&settings.cert)?;
    let key = read_private_key(&settings.key)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| io::Error::other(e.to_string()))?;
    let builder = match &settings.ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(ca)? {
                roots.add(cert).map_err(|e| context(ca)(e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if settings.fail_if_no_peer_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| context(ca)(e.to_string()))?)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| context(&settings.cert)(e.to_string()))?;
    Ok(Arc::new(config))
}

/// When each certificate of a PEM file (the server's chain, or the CA
/// bundle) stops being valid, in seconds since the Unix epoch, with its
/// subject.
pub(crate) fn expiries(path: &Path) -> io::Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for der in read_certificates(path)? {
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| context(path)(format!("not an X.509 certificate: {e}")))?;
        let subject = subject_name(&der).unwrap_or_default();
        out.push((subject, cert.validity().not_after.timestamp()));
    }
    Ok(out)
}

/// The subject of a client certificate as RabbitMQ writes a
/// distinguished name: RFC 4514, the most specific part first
/// (`CN=client,O=Example,C=US`).
pub(crate) fn subject_name(certificate: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let mut parts = Vec::new();
    for rdn in cert.subject().iter().collect::<Vec<_>>().into_iter().rev() {
        let attributes: Vec<String> = rdn
            .iter()
            .map(|attribute| {
                let oid = attribute.attr_type();
                let name = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
                    .map(str::to_string)
                    .unwrap_or_else(|_| oid.to_id_string());
                let value = attribute.as_str().map(str::to_string).unwrap_or_default();
                format!("{name}={}", escape_rdn_value(&value))
            })
            .collect();
        parts.push(attributes.join("+"));
    }
    Some(parts.join(","))
}

/// RFC 4514 escaping of an attribute value.
fn escape_rdn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == value.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

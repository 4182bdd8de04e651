//! Differential conformance through the Java client (Debian's
//! `librabbitmq-client-java`, the RabbitMQ Java client 5.0, which `.ci/run`
//! installs with a JDK): each program in `conformance/java/` runs many
//! scenarios and prints their outcomes (reply codes and texts, header types
//! as the client decodes them, consumer callbacks in order) with generated
//! names masked; `conformance/java/expected/` holds what they printed
//! against RabbitMQ 3.10 (re-record with `conformance/java/record.sh`).
//! Warren must print exactly the same.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The Java client and the logging facade it needs, as Debian installs them.
const CLASSPATH: &[&str] = &[
    "/usr/share/java/amqp-client.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-nop.jar",
];

fn java_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("java")
}

/// The programs compiled once for every test of this binary.
fn classes() -> &'static Path {
    static CLASSES: OnceLock<tempfile::TempDir> = OnceLock::new();
    CLASSES
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temporary directory");
            let sources: Vec<PathBuf> = std::fs::read_dir(java_dir())
                .expect("conformance/java")
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "java"))
                .collect();
            let status = Command::new("javac")
                .arg("-d")
                .arg(dir.path())
                .arg("-cp")
                .arg(CLASSPATH.join(":"))
                .args(&sources)
                .status()
                .unwrap_or_else(|e| panic!("running javac (a JDK; .ci/run installs default-jdk-headless): {e}"));
            assert!(
                status.success(),
                "javac failed ({status}): is librabbitmq-client-java installed?"
            );
            dir
        })
        .path()
}

fn run_program(name: &str) {
    let address = warren_conformance::broker_address();
    let port = address.rsplit(':').next().unwrap_or("5672");
    let classpath = format!("{}:{}", classes().display(), CLASSPATH.join(":"));
    // Into files, read once it exited: a hung program is killed at the
    // deadline instead of hanging the suite.
    let out = tempfile::tempfile().expect("temporary file");
    let err = tempfile::tempfile().expect("temporary file");
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(classpath)
        .arg(name)
        .arg(port)
        .stdout(out.try_clone().expect("file handle"))
        .stderr(err.try_clone().expect("file handle"))
        .spawn()
        .unwrap_or_else(|e| panic!("running java: {e}"));
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for java") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} did not finish in 180 s\n{}", read(err));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{name} failed ({status})\n{}", read(err));
    let actual = read(out);
    let expected = java_dir().join("expected").join(format!("{name}.txt"));
    warren_conformance::recorded::assert_matches(name, &expected, &actual);
}

fn read(mut file: std::fs::File) -> String {
    let mut text = String::new();
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text));
    text
}

#[test]
fn java_client_errors_match_rabbitmq() {
    run_program("Errors");
}

#[test]
fn java_client_messages_match_rabbitmq() {
    run_program("Messages");
}

#[test]
fn java_client_consumers_match_rabbitmq() {
    run_program("Consumers");
}

#[test]
fn java_client_queue_types_match_rabbitmq() {
    run_program("QueueTypes");
}

#[test]
fn java_client_recovers_its_topology_after_a_connection_error() {
    run_program("Recovery");
}

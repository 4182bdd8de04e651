//! rabbitmqadmin, the Python command-line tool RabbitMQ 3.10's management
//! plugin serves at `/cli/rabbitmqadmin`, against Warren's management API:
//! `conformance/rabbitmqadmin/commands.py` runs what operators do with it
//! (declares with its string booleans, lists, publishes, gets, policies,
//! limits, deletes of what is and is not there) and prints what the tool
//! printed; `expected/commands.txt` is what it printed against RabbitMQ
//! 3.10. Warren must print exactly the same.
//!
//! The script is not in this repository: `.ci/run` takes it out of
//! Debian's rabbitmq-server package into `target/tools/rabbitmqadmin`
//! (`RABBITMQADMIN` names another copy).

use std::path::PathBuf;
use std::process::Command;

fn rabbitmqadmin() -> PathBuf {
    if let Some(path) = std::env::var_os("RABBITMQADMIN") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let extracted = target.join("tools").join("rabbitmqadmin");
    assert!(
        extracted.is_file(),
        "{} is missing: .ci/run takes it out of Debian's rabbitmq-server package \
         (or set RABBITMQADMIN to a copy of RabbitMQ 3.10's rabbitmqadmin)",
        extracted.display()
    );
    extracted
}

#[test]
fn rabbitmqadmin_prints_what_it_prints_against_rabbitmq() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rabbitmqadmin");
    let output = Command::new("python3")
        .arg(dir.join("commands.py"))
        .arg(rabbitmqadmin())
        .arg(warren_conformance::management_port().to_string())
        .output()
        .unwrap_or_else(|e| panic!("running python3: {e}"));
    assert!(
        output.status.success(),
        "commands.py failed ({})\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let actual = String::from_utf8_lossy(&output.stdout);
    warren_conformance::recorded::assert_matches("rabbitmqadmin", &dir.join("expected").join("commands.txt"), &actual);
}

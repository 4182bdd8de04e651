//! Celery against Warren, unchanged: real `celery worker` processes (Celery
//! 5.7, kombu over py-amqp) run the scenarios of `conformance/celery/run.py`:
//! ETA tasks holding the prefetch while an immediate task must still run,
//! acks_late redelivery after the worker is killed, retries with countdown,
//! a chord with a result backend, and `inspect ping`. The same scenarios
//! pass against RabbitMQ 3.10 (`WARREN_TEST_URL` points the suite there).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn celery_workers_run_every_scenario() {
    let url = format!("amqp://guest:guest@{}//", warren_conformance::broker_address());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("celery").join("run.py");
    let child = warren_conformance::python::python()
        .arg(&script)
        .args(["--url", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Celery driver");
    let pid = child.id();
    // The driver bounds every scenario itself; this only guards a hang.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(output) => output.expect("the driver's output"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("the Celery driver did not finish within 300 s");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "Celery scenarios failed:\n{stdout}\n{stderr}");
    for scenario in [
        "basic",
        "eta_prefetch",
        "acks_late_redelivery",
        "retry_countdown",
        "chord",
        "ping",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with("PASS") && l.contains(scenario)),
            "scenario {scenario} did not pass:\n{stdout}"
        );
    }
}

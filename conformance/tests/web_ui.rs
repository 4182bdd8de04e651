//! The web UI in a real browser: Debian's chromium, headless, driven by
//! selenium through chromedriver (`.ci/run` installs both), against a
//! real Warren: log in, create a queue, publish, see the depth change, get
//! the message, and no error in the browser's console.

use std::path::PathBuf;

#[test]
fn the_web_ui_works_in_a_real_browser() {
    let mut config = warren::ephemeral_config();
    config.memory_paging_ratio = 0.0;
    let (_, http_port) = warren_conformance::start_background_warren(config);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let screenshot = std::env::var("WARREN_UI_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join(format!("warren-ui-{}.png", std::process::id())));
    let output = warren_conformance::python::python()
        .arg(dir.join("ui/browser_test.py"))
        .arg(format!("http://127.0.0.1:{http_port}/"))
        .arg(&screenshot)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("got the message back"), "{stdout}");
    assert!(stdout.contains("moved 2 messages to ui-replayed"), "{stdout}");
    assert!(stdout.contains("no console errors"), "{stdout}");
    assert!(screenshot.exists(), "no screenshot at {}", screenshot.display());
}

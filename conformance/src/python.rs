//! Python for the tests that drive Warren through Python clients (pika,
//! Celery): the pinned packages of `conformance/requirements.txt`, installed
//! with the machine's `python3 -m pip` into a directory under `target/` the
//! first time a test asks, so the test command needs nothing installed by
//! hand. Test binaries run in parallel: a file lock makes one install and
//! the others wait for it; a marker named after the requirements' contents
//! makes later runs skip the install.

use std::path::{Path, PathBuf};
use std::process::Command;

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the packages go: `$CARGO_TARGET_DIR/python` or `target/python`.
fn install_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| conformance_dir().join("..").join("target"));
    target.join("python")
}

/// The requirements with the files they include, as one text (to name the
/// marker of a finished install).
fn requirements_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut all = text.clone();
    for line in text.lines() {
        if let Some(included) = line.trim().strip_prefix("-r ") {
            all.push_str(&requirements_text(
                &path.parent().unwrap_or(Path::new(".")).join(included),
            ));
        }
    }
    all
}

/// A command running the machine's `python3` with the pinned packages
/// importable (installing them first if this is the first use).
pub fn python() -> Command {
    let packages = ensure_installed();
    let interpreter = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut command = Command::new(interpreter);
    let path = match std::env::var_os("PYTHONPATH") {
        Some(existing) => {
            let mut paths = vec![packages];
            paths.extend(std::env::split_paths(&existing));
            std::env::join_paths(paths).expect("a valid PYTHONPATH")
        }
        None => packages.into_os_string(),
    };
    command.env("PYTHONPATH", path).env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

fn ensure_installed() -> PathBuf {
    let requirements = conformance_dir().join("requirements.txt");
    let text = requirements_text(&requirements);
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        text.hash(&mut hasher);
        hasher.finish()
    };
    let dir = install_dir();
    let packages = dir.join(format!("site-{digest:016x}"));
    let done = packages.join(".installed");
    if done.exists() {
        return packages;
    }
    std::fs::create_dir_all(&dir).expect("create the python directory under target/");
    let lock = std::fs::File::create(dir.join("install.lock")).expect("create the install lock");
    lock.lock().expect("take the install lock");
    if !done.exists() {
        let interpreter = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let status = Command::new(&interpreter)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .arg("--target")
            .arg(&packages)
            .arg("-r")
            .arg(&requirements)
            .status()
            .unwrap_or_else(|e| panic!("running {interpreter} -m pip: {e} (python3 with pip is required)"));
        assert!(
            status.success(),
            "installing {} with pip failed ({status})",
            requirements.display()
        );
        std::fs::write(&done, text).expect("mark the install finished");
    }
    packages
}

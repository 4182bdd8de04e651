//! The `warren` binary: reads its settings (flags, `WARREN_*` environment
//! variables, a TOML file), starts the broker, and shuts it down gracefully
//! on SIGINT or SIGTERM.

use std::cell::Cell;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use warren::Settings;

/// mimalloc instead of the system allocator: the broker allocates and frees
/// many small buffers across threads, where glibc's malloc showed up as
/// 10-15% of CPU time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How many times the broker asked for freed memory back; each runtime
/// worker compares it with the count it last answered when it goes idle.
static RELEASES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The release this thread last answered.
    static ANSWERED: Cell<u64> = const { Cell::new(0) };
}

/// Hands freed memory back to the operating system (mimalloc otherwise
/// keeps freed pages for a while, and resident memory would stay above the
/// watermark after consumers drained the queues). The broker calls this
/// while its memory alarm is raised or queues page.
///
/// mimalloc collects only the calling thread's heap, and a block freed by
/// another thread (a body read on a runtime worker, freed once a queue
/// paged it out on another) waits in its owner's heap until the owner
/// allocates again or collects: an idle worker, with its publishers
/// blocked, would hold it indefinitely. So this also asks every worker to
/// collect its own heap the next time it goes idle ([`collect_if_asked`]).
fn release_memory() {
    RELEASES.fetch_add(1, Ordering::Relaxed);
    // SAFETY: mi_collect takes no pointers; mimalloc allows it from any
    // thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Run by each runtime worker as it goes idle: collects its own heap once
/// per release the broker asked for since it last did.
fn collect_if_asked() {
    let asked = RELEASES.load(Ordering::Relaxed);
    ANSWERED.with(|answered| {
        if answered.get() != asked {
            answered.set(asked);
            // SAFETY: as in release_memory; the calling thread's heap only.
            unsafe { libmimalloc_sys::mi_collect(false) }
        }
    });
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(collect_if_asked)
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        // Logs go to stderr, as README.md says; stdout stays free. Colour
        // only on a terminal, never into a file.
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut config = Settings::load()?.resolve()?;
    config.release_memory = Some(release_memory);
    let broker = warren::start(config).await?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    broker.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

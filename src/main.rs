//! The `warren` binary: reads its settings (flags, `WARREN_*` environment
//! variables, a TOML file), starts the broker, and shuts it down gracefully
//! on SIGINT or SIGTERM.

use std::io::IsTerminal;

use warren::Settings;

/// mimalloc instead of the system allocator: the broker allocates and frees
/// many small buffers across threads, where glibc's malloc showed up as
/// 10-15% of CPU time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hands memory freed on any thread back to the operating system at once
/// (mimalloc otherwise keeps freed pages for a while, and resident memory
/// would stay above the watermark after consumers drained the queues). The
/// broker calls this while its memory alarm is raised.
fn release_memory() {
    // SAFETY: mi_collect takes no pointers; mimalloc allows it from any
    // thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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

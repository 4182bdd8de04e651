//! Blocking work (reading and writing files) kept off the async runtime's
//! worker threads, so a slow disk never stalls the connections those
//! threads serve.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` on a thread where blocking is fine: the runtime's blocking
/// pool, or a thread of its own outside a runtime.
pub(crate) fn spawn(work: impl FnOnce() + Send + 'static) {
    match Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(work);
        }
        Err(_) => {
            std::thread::spawn(work);
        }
    }
}

/// Waits here for `future` (a cluster proposal, from code that is not
/// async), handing this worker's other tasks to other threads first. None
/// on a current-thread runtime, which cannot wait for its own tasks.
pub(crate) fn wait<F: std::future::Future>(future: F) -> Option<F::Output> {
    let handle = Handle::try_current().ok()?;
    if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
        return None;
    }
    Some(tokio::task::block_in_place(|| handle.block_on(future)))
}

/// Runs `work` here and now, which may block. On a worker thread of the
/// multi-threaded runtime the runtime is told first (`block_in_place`), so
/// its other tasks move to other threads meanwhile.
pub(crate) fn run<T>(work: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

//! A node's non-durable classic queues die with it, as in RabbitMQ: when a
//! node starts again, the other nodes forget the non-durable queues whose
//! home it was. The restarted node proposes that once, through the
//! metadata log (`MetadataChange::ForgetTransientQueues`), and declares no
//! non-durable queue of its own until that is committed: the log then
//! orders every queue of its new life after the forgetting, so a queue
//! declared again at once is never forgotten with the old one. Until then,
//! the log's declarations of its non-durable queues (applied again after a
//! crash, or in a snapshot) are its earlier lives': it does not make them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::replication::{ClusterLink, MetadataChange, ReplicationError};

/// How long a declaration waits for the forgetting before it fails.
const WAIT: Duration = Duration::from_secs(5);
/// How soon a forgetting the cluster could not commit is proposed again.
const RETRY: Duration = Duration::from_millis(200);

/// Whether this node's earlier lives' non-durable queues are forgotten.
#[derive(Debug)]
pub(crate) struct EarlierLives {
    forgotten: watch::Sender<bool>,
}

impl Default for EarlierLives {
    fn default() -> Self {
        EarlierLives {
            forgotten: watch::channel(false).0,
        }
    }
}

impl EarlierLives {
    /// Proposes the forgetting until the cluster commits it.
    pub(crate) fn forget(self: &Arc<Self>, link: Arc<dyn ClusterLink>) {
        let this = self.clone();
        tokio::spawn(async move {
            let home = link.this_node().0;
            loop {
                let change = MetadataChange::ForgetTransientQueues { home: home.clone() };
                match link.propose(change).await {
                    Ok(()) => break,
                    Err(e) => tracing::debug!("forgetting this node's earlier non-durable queues: {e}; again"),
                }
                tokio::time::sleep(RETRY).await;
            }
            this.forgotten.send_replace(true);
        });
    }

    /// Whether the forgetting is committed: until it is, a non-durable
    /// queue of this node's that the log declares is an earlier life's
    /// (this life declares its own only after it).
    pub(crate) fn are_forgotten(&self) -> bool {
        *self.forgotten.borrow()
    }

    /// Waits until the forgetting is committed (a while at most).
    pub(crate) async fn forgotten(&self) -> Result<(), ReplicationError> {
        let mut forgotten = self.forgotten.subscribe();
        let waited = tokio::time::timeout(WAIT, forgotten.wait_for(|done| *done))
            .await
            .is_ok_and(|seen| seen.is_ok());
        if waited {
            Ok(())
        } else {
            Err(ReplicationError::Unavailable(
                "this node's earlier non-durable queues are not yet forgotten".into(),
            ))
        }
    }
}

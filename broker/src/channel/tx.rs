//! Transactions (tx.select, tx.commit, tx.rollback): publishes and acks on a
//! transactional channel are held back and take effect together on commit.

use std::sync::Arc;

use super::ack::Unacked;
use super::{Channel, ConnCtx};
use crate::error::{AmqpError, AmqpResult};
use crate::message::Message;
use crate::queue::{Queue, Settlement};
use warren_protocol::{TxCommitOk, TxRollbackOk, TxSelectOk};

/// What a transaction has staged since its last commit or rollback.
#[derive(Default)]
pub(crate) struct TxState {
    /// Routed publishes, in order, with where they were routed.
    publishes: Vec<(Arc<Message>, Vec<Arc<Queue>>, bool)>,
    /// Settlements (acks, nacks, rejects), in order.
    pub acks: Vec<(Vec<Unacked>, Settlement)>,
}

impl TxState {
    pub(super) fn stage_publish(&mut self, message: Arc<Message>, queues: &[Arc<Queue>], mandatory: bool) {
        self.publishes.push((message, queues.to_vec(), mandatory));
    }
}

impl Channel {
    pub(super) fn tx_select(&mut self, ctx: &mut ConnCtx) -> AmqpResult<()> {
        if self.confirm.is_some() {
            return Err(AmqpError::precondition_failed("cannot switch from confirm to tx mode"));
        }
        if self.tx.is_none() {
            self.tx = Some(TxState::default());
        }
        ctx.send(self.id, TxSelectOk {});
        Ok(())
    }

    pub(super) fn tx_commit(&mut self, ctx: &mut ConnCtx) -> AmqpResult<()> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(AmqpError::precondition_failed("channel is not transactional"));
        };
        let staged = std::mem::take(tx);
        for (message, queues, mandatory) in staged.publishes {
            self.deliver_to_queues(ctx, &message, &queues, mandatory);
        }
        for (deliveries, settlement) in staged.acks {
            self.settle(deliveries, settlement);
        }
        ctx.send(self.id, TxCommitOk {});
        Ok(())
    }

    pub(super) fn tx_rollback(&mut self, ctx: &mut ConnCtx) -> AmqpResult<()> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(AmqpError::precondition_failed("channel is not transactional"));
        };
        let staged = std::mem::take(tx);
        // Acks are undone: those deliveries are unacknowledged again.
        for (deliveries, _) in staged.acks {
            self.restore_unacked(deliveries);
        }
        ctx.send(self.id, TxRollbackOk {});
        Ok(())
    }
}

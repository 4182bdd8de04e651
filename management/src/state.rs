//! What every handler shares: the broker's admin handle, the sampled
//! rates and the node's name.

use std::sync::Arc;

use warren_broker::Admin;

use crate::rates::Rates;

#[derive(Clone)]
pub(crate) struct Api {
    pub admin: Admin,
    pub rates: Arc<Rates>,
    pub node: Arc<str>,
    /// The port this API listens on (a listener the health checks know).
    pub http_port: u16,
}

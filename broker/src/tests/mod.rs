//! Unit tests that need several of the broker's modules together (a real
//! vhost with its exchanges and queues, no sockets), with controlled time.

mod queue_time;
mod remote_home;

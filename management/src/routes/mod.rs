//! The API's routes, one file per kind of object.

pub(crate) mod bindings;
pub(crate) mod channels;
pub(crate) mod connections;
pub(crate) mod definitions;
pub(crate) mod exchanges;
pub(crate) mod health;
pub(crate) mod limits;
pub(crate) mod overview;
pub(crate) mod policies;
pub(crate) mod queues;
pub(crate) mod users;
pub(crate) mod vhosts;

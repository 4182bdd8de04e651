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
pub(crate) mod shovels;
pub(crate) mod users;
pub(crate) mod vhosts;

/// 201 for a new object, 204 for one that existed (RabbitMQ's answers to
/// PUT).
pub(crate) fn created(new: bool) -> axum::http::StatusCode {
    if new {
        axum::http::StatusCode::CREATED
    } else {
        axum::http::StatusCode::NO_CONTENT
    }
}

//! Warren facade (wired up with the broker).

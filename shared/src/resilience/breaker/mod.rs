//! The circuit breaker, its state shared by the whole fleet through the state store.

pub mod config;
pub mod decision;
pub mod record;
pub mod state;
pub mod window;

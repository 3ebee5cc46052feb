//! One entry point per Lambda function, each over its own deps, mounted by Lambda and by the
//! local server: `callback::handle`, `send::handle`, `send_worker::handle`,
//! `token_refresh::handle`, `jssdk::handle`, `auth::handle`, ….

pub mod admin;
pub mod auth;
pub mod callback;
pub mod followers;
pub mod health;
pub mod jssdk;
pub mod pay_notify;
pub mod pay_reconcile;
pub mod send;
pub mod send_worker;
pub mod sync;
pub mod token_refresh;
pub mod tuner;

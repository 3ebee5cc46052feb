//! A Lambda-level benchmark of the functions: each release binary runs as on Lambda, driven
//! through its real `lambda_runtime` client by a local Runtime API ([`runtime_api`]), one fresh
//! event at a time ([`workload`]), its init, wall and CPU time per invocation and peak memory
//! measured ([`run`]), the results printed as a markdown table ([`table`]).
//!
//! `scripts/lambda_bench.sh` builds the functions, starts moto and wechat-mock, and runs every
//! scenario; the functions reach moto through a keep-alive front ([`keepalive`]).

pub mod events;
pub mod keepalive;
pub mod process;
pub mod run;
pub mod runtime_api;
pub mod scenario;
pub mod stats;
pub mod table;
pub mod workload;

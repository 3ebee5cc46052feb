//! One `handle(&Deps, Request) -> Response` per Lambda function, mounted by Lambda and by the local server.

pub mod callback;
pub mod jssdk;
pub mod send;
pub mod send_worker;
pub mod token;

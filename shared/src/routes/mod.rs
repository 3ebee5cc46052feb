//! One `handle(&Deps, Request) -> Response` per Lambda function, mounted by Lambda and by the local server.

pub mod callback;

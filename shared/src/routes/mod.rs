//! One `handle(&Deps, Request)` per Lambda function, mounted by Lambda and by the local server.

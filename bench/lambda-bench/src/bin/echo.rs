//! `lambda-bench-echo`: the smallest real `lambda_runtime` function, answering each event with
//! itself — what the harness's own test drives (tests/harness.rs).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}

//! Creates the state table when it is missing: for tests and `wechat-local` with
//! `STATE_STORE=dynamodb` (on AWS the SAM template owns the table).
//!
//! Polls `DescribeTable` instead of using the SDK waiters, whose 20 s minimum delay would stall
//! every test run.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};

use super::codec::{EXPIRES_AT, PK, SK};
use super::error::{LOG_TARGET, from_sdk};
use crate::store::StoreError;

/// How often and how long to wait for a new table to become `ACTIVE`.
const POLL_EVERY: Duration = Duration::from_millis(200);
const POLL_ATTEMPTS: u32 = 150;

/// Creates table `name` (`pk`/`sk` strings, on-demand, TTL on [`EXPIRES_AT`]) unless it exists,
/// waits until it is `ACTIVE`, and makes sure TTL is enabled.
///
/// # Errors
/// The converted SDK error of the first failing call, or [`StoreError::Unavailable`] when the
/// table does not become active within 30 s.
pub async fn create_table_if_missing(client: &Client, name: &str) -> Result<(), StoreError> {
    let exists = match client.describe_table().table_name(name).send().await {
        Ok(_) => true,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            false
        }
        Err(err) => return Err(from_sdk("DescribeTable", err, 0)),
    };
    if !exists {
        create(client, name).await?;
    }
    wait_active(client, name).await?;
    enable_ttl(client, name).await
}

async fn create(client: &Client, name: &str) -> Result<(), StoreError> {
    let attribute = |attr: &str| {
        AttributeDefinition::builder()
            .attribute_name(attr)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |attr: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(attr)
            .key_type(key_type)
            .build()
    };
    let request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK).map_err(invalid)?)
        .attribute_definitions(attribute(SK).map_err(invalid)?)
        .key_schema(key(PK, KeyType::Hash).map_err(invalid)?)
        .key_schema(key(SK, KeyType::Range).map_err(invalid)?);
    match request.send().await {
        Ok(_) => {
            tracing::info!(target: LOG_TARGET, table = name, "created state table");
            Ok(())
        }
        // Another process created it first: fine, it is being created or is there.
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => Ok(()),
        Err(err) => Err(from_sdk("CreateTable", err, 0)),
    }
}

async fn wait_active(client: &Client, name: &str) -> Result<(), StoreError> {
    for _ in 0..POLL_ATTEMPTS {
        let described = client.describe_table().table_name(name).send().await;
        let status = described.map_err(|err| from_sdk("DescribeTable", err, 0))?;
        if status.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    Err(StoreError::Unavailable(format!("table {name} did not become active")))
}

async fn enable_ttl(client: &Client, name: &str) -> Result<(), StoreError> {
    let described = client.describe_time_to_live().table_name(name).send().await;
    let described = described.map_err(|err| from_sdk("DescribeTimeToLive", err, 0))?;
    let ttl = described.time_to_live_description();
    let enabled = ttl
        .and_then(|t| t.time_to_live_status())
        .is_some_and(|s| matches!(s, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
    if enabled {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(EXPIRES_AT)
        .enabled(true)
        .build()
        .map_err(invalid)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|err| from_sdk("UpdateTimeToLive", err, 0))?;
    Ok(())
}

fn invalid(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Invalid(format!("table definition: {err}"))
}

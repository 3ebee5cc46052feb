//! DynamoDB implementation of [`StateStore`]: the fleet-wide store on AWS.
//!
//! One single table (`pk`/`sk` strings, TTL on [`super::EXPIRES_AT`]); see `codec.rs` for the item layout
//! and `expr.rs` for how conditions and updates become expressions. Every write sets
//! `ReturnValuesOnConditionCheckFailure = ALL_OLD`, so a race loser gets the winner's item in
//! [`StoreError::ConditionFailed`] without a second read. Reads are strongly consistent and treat
//! items whose TTL has passed as absent (DynamoDB deletes them lazily, hours to days late), judged
//! by the injected clock, which also supplies `:now` for the `ItemAbsent` / `ItemPresent`
//! conditions. SDK errors become [`StoreError`]s in `error.rs` only.

mod client;
mod codec;
mod error;
mod expr;
mod table;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

pub use self::client::{DynamoClientConfig, DynamoConfigError};
pub use self::codec::{PK, SK};
use self::codec::{decode_attrs, decode_live, decode_sk, encode_item, encode_key};
use self::error::from_sdk;
use self::expr::Expr;
pub use self::table::create_table_if_missing;
use super::update::{check_attrs, check_key, check_pk};
use super::{Attrs, Condition, Key, StateStore, StoreError, Update};
use crate::clock::SharedClock;

/// The DynamoDB-backed [`StateStore`]. Cloning is cheap (the SDK client is reference-counted).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    clock: SharedClock,
}

impl DynamoStore {
    /// A store on `table` using `client` (build it with [`DynamoClientConfig::client`] so it has
    /// tight timeouts) and judging expiry by `clock`.
    pub fn new(client: Client, table: impl Into<String>, clock: SharedClock) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client (for table administration in tests and the local server).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl StateStore for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Attrs>, StoreError> {
        check_key(key)?;
        let now = self.clock.now_secs();
        let request = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(encode_key(key)));
        let output = request
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| from_sdk("GetItem", e, now))?;
        match output.item() {
            Some(item) => decode_live(item, now),
            None => Ok(None),
        }
    }

    async fn put(&self, key: &Key, attrs: Attrs, condition: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        check_attrs(&attrs)?;
        let now = self.clock.now_secs();
        let mut expr = Expr::default();
        let condition = expr.condition(&condition, now);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode_item(key, &attrs)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .map_err(|e| from_sdk("PutItem", e, now))?;
        Ok(())
    }

    async fn update(&self, key: &Key, update: Update) -> Result<Attrs, StoreError> {
        check_key(key)?;
        update.validate()?;
        let now = self.clock.now_secs();
        let mut expr = Expr::default();
        let update_expression = expr.update(&update);
        let condition = expr.condition(&update.condition, now);
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(encode_key(key)))
            .update_expression(update_expression)
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .map_err(|e| from_sdk("UpdateItem", e, now))?;
        // ALL_NEW returns the whole item, expired or not (the contract: "the item as it is after").
        output.attributes().map_or_else(|| Ok(Attrs::new()), decode_attrs)
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        let now = self.clock.now_secs();
        let mut expr = Expr::default();
        let condition = expr.condition(&condition, now);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(encode_key(key)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .map_err(|e| from_sdk("DeleteItem", e, now))?;
        Ok(())
    }

    async fn query(&self, pk: &str) -> Result<Vec<(String, Attrs)>, StoreError> {
        check_pk(pk)?;
        let now = self.clock.now_secs();
        let mut expr = Expr::default();
        let (alias, value) = (expr.name(PK), expr.value(AttributeValue::S(pk.to_owned())));
        let key_condition = format!("{alias} = {value}");
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&key_condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .consistent_read(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| from_sdk("Query", e, now))?;
            for item in page.items() {
                // Expired items are skipped here rather than with a FilterExpression: one rule,
                // the same `is_expired_at` the memory store uses.
                if let Some(attrs) = decode_live(item, now)? {
                    items.push((decode_sk(item)?, attrs));
                }
            }
            match page.last_evaluated_key() {
                Some(last) if !last.is_empty() => start_key = Some(last.clone()),
                _ => return Ok(items),
            }
        }
    }

    async fn query_page(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<(String, Attrs)>, bool), StoreError> {
        check_pk(pk)?;
        let now = self.clock.now_secs();
        let mut expr = Expr::default();
        let (alias, value) = (expr.name(PK), expr.value(AttributeValue::S(pk.to_owned())));
        let key_condition = format!("{alias} = {value}");
        let mut start_key = after.map(|sk| encode_key(&Key::new(pk, sk)));
        let mut items = Vec::new();
        // DynamoDB's Limit counts items read, expired ones included: read on until `limit`
        // live items (or the partition's end), asking one more to know whether more follow.
        let wanted = i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX);
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&key_condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .consistent_read(true)
                .limit(wanted)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| from_sdk("Query", e, now))?;
            for item in page.items() {
                if let Some(attrs) = decode_live(item, now)? {
                    items.push((decode_sk(item)?, attrs));
                }
            }
            if items.len() > limit {
                items.truncate(limit);
                return Ok((items, true));
            }
            match page.last_evaluated_key() {
                Some(last) if !last.is_empty() => start_key = Some(last.clone()),
                _ => return Ok((items, false)),
            }
        }
    }
}

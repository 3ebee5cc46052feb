//! SDK errors → [`StoreError`], in one place.
//!
//! Modeled errors are matched on the SDK's typed variants (through the crate-wide
//! [`aws_sdk_dynamodb::Error`], which every operation error converts into); `code()` is consulted
//! only for unmodeled codes such as `ValidationException`. Display text is never inspected, and
//! only `code()` / `message()` are logged, not the ~2 KB `DisplayErrorContext`.

use aws_sdk_dynamodb::Error as DynamoError;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use super::codec::decode_live;
use crate::store::StoreError;

/// The target of the store's log events.
pub(crate) const LOG_TARGET: &str = "store.dynamodb";

/// Converts a failed SDK call. `op` names the operation in logs; `now_secs` judges whether the
/// item returned with a failed condition has expired (an expired item counts as absent).
pub(crate) fn from_sdk<E>(op: &'static str, err: SdkError<E, HttpResponse>, now_secs: i64) -> StoreError
where
    E: Into<DynamoError> + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (error, code, message) = match err {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let error: DynamoError = context.into_err().into();
            let (code, message) = (error.code().map(str::to_owned), error.message().map(str::to_owned));
            (from_service(error, status, now_secs), code, message)
        }
        SdkError::TimeoutError(_) => (StoreError::Unavailable("timeout".to_owned()), None, None),
        SdkError::DispatchFailure(failure) => {
            let kind = match failure.as_connector_error() {
                Some(c) if c.is_timeout() => "dispatch timeout",
                Some(c) if c.is_io() => "dispatch i/o error",
                _ => "dispatch failure",
            };
            (StoreError::Unavailable(kind.to_owned()), None, None)
        }
        SdkError::ResponseError(_) => (StoreError::Unavailable("unreadable response".to_owned()), None, None),
        SdkError::ConstructionFailure(_) => (StoreError::Invalid("request could not be built".to_owned()), None, None),
        _ => (StoreError::Unavailable("unknown sdk failure".to_owned()), None, None),
    };
    // A failed condition is an expected outcome (a lost race), not a fault.
    if !matches!(error, StoreError::ConditionFailed { .. }) {
        tracing::warn!(target: LOG_TARGET, op, %error, code, message, "dynamodb call failed");
    }
    error
}

/// Converts a service (HTTP-level) error answered with `status`.
fn from_service(error: DynamoError, status: u16, now_secs: i64) -> StoreError {
    let code = error.code().unwrap_or("unknown").to_owned();
    match error {
        DynamoError::ConditionalCheckFailedException(failed) => match failed.item() {
            None => StoreError::ConditionFailed { current: None },
            Some(item) => match decode_live(item, now_secs) {
                Ok(current) => StoreError::ConditionFailed { current },
                Err(corrupt) => corrupt,
            },
        },
        DynamoError::ProvisionedThroughputExceededException(_)
        | DynamoError::RequestLimitExceeded(_)
        | DynamoError::ThrottlingException(_)
        | DynamoError::TransactionConflictException(_)
        | DynamoError::ReplicatedWriteConflictException(_) => StoreError::Throttled(code),
        DynamoError::ItemCollectionSizeLimitExceededException(_) => StoreError::Invalid(code),
        DynamoError::InternalServerError(_)
        | DynamoError::InvalidEndpointException(_)
        | DynamoError::ResourceNotFoundException(_) => StoreError::Unavailable(code),
        // Unmodeled codes: the only place `code()` decides. Anything else (5xx, auth, unknown)
        // means the store cannot serve us now: callers degrade to local state.
        _ if code == "ValidationException" => StoreError::Invalid(code),
        _ if code == "ThrottlingException" => StoreError::Throttled(code),
        _ => StoreError::Unavailable(format!("{code} (HTTP {status})")),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::ConnectorError;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_dynamodb::types::error::{
        ConditionalCheckFailedException, ProvisionedThroughputExceededException, RequestLimitExceeded,
        ThrottlingException, TransactionConflictException,
    };

    use super::*;
    use crate::store::AttrValue;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(status.try_into().expect("valid status"), "".into())
    }

    fn service(error: PutItemError, status: u16) -> StoreError {
        from_sdk("PutItem", SdkError::service_error(error, response(status)), 100)
    }

    #[test]
    fn conditional_check_failure_carries_the_live_item() {
        let failed = ConditionalCheckFailedException::builder()
            .item("pk", AttributeValue::S("p".into()))
            .item("state", AttributeValue::S("open".into()))
            .item("expires_at", AttributeValue::N("101".into()))
            .build();
        let error = service(PutItemError::ConditionalCheckFailedException(failed), 400);
        let StoreError::ConditionFailed { current: Some(current) } = error else {
            panic!("{error:?}")
        };
        assert_eq!(current.get("state"), Some(&AttrValue::S("open".into())));
        assert!(!current.contains_key("pk"));
    }

    #[test]
    fn conditional_check_failure_with_an_expired_item_is_absent() {
        let failed = ConditionalCheckFailedException::builder()
            .item("expires_at", AttributeValue::N("100".into()))
            .build();
        let error = service(PutItemError::ConditionalCheckFailedException(failed), 400);
        assert!(
            matches!(error, StoreError::ConditionFailed { current: None }),
            "{error:?}"
        );
    }

    #[test]
    fn conditional_check_failure_with_an_undecodable_item_is_corrupt() {
        let failed = ConditionalCheckFailedException::builder()
            .item("x", AttributeValue::Bool(true))
            .build();
        let error = service(PutItemError::ConditionalCheckFailedException(failed), 400);
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    }

    #[test]
    fn throughput_limits_and_conflicts_are_throttling() {
        let errors = [
            PutItemError::ProvisionedThroughputExceededException(
                ProvisionedThroughputExceededException::builder().build(),
            ),
            PutItemError::RequestLimitExceeded(RequestLimitExceeded::builder().build()),
            PutItemError::ThrottlingException(ThrottlingException::builder().build()),
            PutItemError::TransactionConflictException(TransactionConflictException::builder().build()),
        ];
        for error in errors {
            let converted = service(error, 400);
            assert!(matches!(converted, StoreError::Throttled(_)), "{converted:?}");
        }
    }

    #[test]
    fn unmodeled_codes_decide_only_when_nothing_is_modeled() {
        let unhandled = |code: &str| {
            UpdateItemError::generic(
                ErrorMetadata::builder()
                    .code(code)
                    .message("The conditional request failed")
                    .build(),
            )
        };
        let validation = from_sdk(
            "UpdateItem",
            SdkError::service_error(unhandled("ValidationException"), response(400)),
            0,
        );
        assert!(matches!(validation, StoreError::Invalid(_)), "{validation:?}");
        // The message text says "conditional" but only the typed variant means ConditionFailed.
        let other = from_sdk(
            "UpdateItem",
            SdkError::service_error(unhandled("Whatever"), response(503)),
            0,
        );
        assert!(matches!(other, StoreError::Unavailable(_)), "{other:?}");
    }

    #[test]
    fn timeouts_and_dispatch_failures_are_unavailable() {
        let timeout: SdkError<PutItemError, HttpResponse> = SdkError::timeout_error("too slow");
        assert!(matches!(from_sdk("PutItem", timeout, 0), StoreError::Unavailable(_)));
        let dispatch: SdkError<PutItemError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        assert!(matches!(from_sdk("PutItem", dispatch, 0), StoreError::Unavailable(_)));
        let construction: SdkError<PutItemError, HttpResponse> = SdkError::construction_failure("bad input");
        assert!(matches!(from_sdk("PutItem", construction, 0), StoreError::Invalid(_)));
    }
}

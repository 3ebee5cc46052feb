//! DynamoDB implementation of [`super::StateStore`] (placeholder until the store issue lands).

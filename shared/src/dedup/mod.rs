//! Exactly-once message processing: idempotency records with leases in the state store.

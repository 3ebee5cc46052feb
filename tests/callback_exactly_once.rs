//! Exactly-once delivery: concurrent and retried deliveries of one message, slow handlers, store outages.

fn main() {}

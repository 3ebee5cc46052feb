//! The resilient WeChat API client: per-API policies, domain failover, fleet-wide token manager.

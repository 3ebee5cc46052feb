//! HTTP helpers: the unified `{code, message, data}` response, error mapping, request ids, limits.

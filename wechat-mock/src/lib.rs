//! A real HTTP mock of WeChat's API with fault injection (placeholder until its issue lands).

//! What the running fleet says about itself: JSON log lines (`logging`) and the metrics' names
//! (`metrics`), recorded through the `metrics` facade; the exporter is installed by each binary.

pub mod emf;
pub mod handles;
mod logging;
pub mod metrics;

pub use logging::init_logging;

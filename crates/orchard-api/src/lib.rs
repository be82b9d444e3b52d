//! MLflow's REST API as types, written once for both ends of the wire.
//!
//! - [`wire`]: the entities (experiments, runs, metrics, logged models, registered models and versions,
//!   artifact listings) written as MLflow's protobuf JSON, straight from the domain types of
//!   `orchard-tracking` — what `orchard-server` answers;
//! - [`read`]: the same shapes read back, owned and lenient as a client must be with any MLflow server;
//! - [`endpoints`]: each endpoint's method, path, request and answer — the server mounts its routes at
//!   these paths and `orchard-client` calls them;
//! - [`fields`]: a request read by field name with MLflow's leniency and wording, and [`fields::FromFields`],
//!   which reads each typed request out of it (the server's side of the same types).
//!
//! Nothing here knows HTTP libraries: it is data and its JSON form.

pub mod endpoints;
pub mod fields;
pub mod requests;
pub mod read;
pub mod wire;

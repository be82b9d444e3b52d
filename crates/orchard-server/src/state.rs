//! What every handler can reach: the domain services, nothing of HTTP.

use orchard_tracking::artifacts::Artifacts;
use orchard_graphql::GraphQl;
use orchard_tracking::Tracking;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub tracking: Tracking,
    /// `None` when artifacts are not proxied (`--no-serve-artifacts`): clients then write to the store directly.
    pub artifacts: Option<Artifacts>,
    /// The model gateway (`/models/<name>/predict`, `/v2/…`), when enabled.
    pub gateway: Option<orchard_serve::Serving>,
    /// MLflow's GraphQL schema (`/graphql`), over the same services.
    pub graphql: GraphQl,
}

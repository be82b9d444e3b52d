//! What the resolvers reach: the domain services, handed to the schema once.

use orchard_tracking::artifacts::Artifacts;
use orchard_tracking::Tracking;

pub(crate) struct Services {
    pub(crate) tracking: Tracking,
    /// The artifact proxy's store, when the server proxies artifacts.
    pub(crate) artifacts: Option<Artifacts>,
}

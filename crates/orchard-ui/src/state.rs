//! What every page reads through: the tracking domain (the same calls the REST API makes) and, when the server
//! proxies artifacts, its artifact store.

use orchard_tracking::artifacts::Artifacts;
use orchard_tracking::Tracking;

#[derive(Clone)]
pub struct Ui {
    pub tracking: Tracking,
    pub artifacts: Option<Artifacts>,
}

//! Hydra-compatible configuration for Orchard: a `conf/` directory of YAML config groups composed through a
//! defaults list, `${...}` interpolation, and Hydra's command-line override grammar with sweeps.
//!
//! The aim is exactness: a user's existing Hydra `conf/` composes to the same tree here as in Hydra 1.3
//! (checked against the real `hydra-core` by the interop suite).

pub mod interp;
pub mod node;
pub mod overrides;
pub mod yaml;

pub use node::Node;

//! Hydra-compatible configuration for Orchard: a `conf/` directory of YAML config groups composed through a
//! defaults list, `${...}` interpolation, and Hydra's command-line override grammar with sweeps.
//!
//! The aim is exactness: a user's existing Hydra `conf/` composes to the same tree here as in Hydra 1.3
//! (checked against the real `hydra-core` by the interop suite). The library API:
//!
//! ```no_run
//! let cfg = orchard_config::Config::compose("conf".as_ref(), "config", &["params.learning_rate=0.02".into()])?;
//! let lr = cfg.get("params.learning_rate")?;
//! println!("{}", cfg.to_yaml());
//! # Ok::<(), orchard_config::ConfigError>(())
//! ```

#[cfg(feature = "cli")]
pub mod cli;
pub mod compose;
mod error;
pub mod interp;
pub mod overrides;
pub mod sweep;

use std::path::Path;

pub use error::ConfigError;
pub use orchard_yaml::Node;

/// A composed config: the tree, and what `${hydra:...}` answers for it.
#[derive(Debug, Clone)]
pub struct Config {
    pub tree: Node,
    pub hydra: interp::HydraContext,
    /// `hydra.*` overrides, accepted and kept aside (they configure Hydra's runner, not the job).
    pub hydra_overrides: Vec<String>,
}

impl Config {
    /// Composes `config_name` in `config_dir` with Hydra command-line overrides.
    pub fn compose(
        config_dir: &Path,
        config_name: &str,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        let composed = compose::compose(config_dir, config_name, overrides)?;
        Ok(Config::from_composed(composed, config_name))
    }

    fn from_composed(composed: compose::Composed, config_name: &str) -> Config {
        let hydra = interp::HydraContext {
            runtime_cwd: std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            job_name: config_name.to_string(),
            choices: Vec::new(),
        };
        Config {
            tree: composed.config,
            hydra,
            hydra_overrides: composed.hydra_overrides,
        }
    }

    /// The resolved value at a dotted path, e.g. `params.learning_rate`.
    pub fn get(&self, path: &str) -> Result<Node, ConfigError> {
        interp::resolve_path(&self.tree, path, &self.hydra)
    }

    /// The whole tree with every interpolation resolved.
    pub fn resolved(&self) -> Result<Node, ConfigError> {
        interp::resolve_all(&self.tree, &self.hydra)
    }

    /// YAML as `--cfg job` prints it (interpolations left as written).
    pub fn to_yaml(&self) -> String {
        orchard_yaml::to_yaml(&self.tree)
    }
}

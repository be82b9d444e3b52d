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

pub mod compose;
pub mod interp;
pub mod node;
pub mod overrides;
pub mod sweep;
pub mod yaml;

use std::path::Path;

pub use node::Node;

/// Everything that can go wrong composing a config; each names the file, key or override at fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("Cannot find primary config '{name}'. Check that it's in your config search path.\n\nConfig search path:\n\tfile://{dir}")]
    PrimaryNotFound { name: String, dir: String },
    #[error("{}", missing_config_message(.parent, .name, .group.as_deref(), .options))]
    MissingConfig {
        parent: String,
        name: String,
        group: Option<String>,
        options: Vec<String>,
    },
    #[error("You must specify '{group}', e.g, {group}=<OPTION>\nAvailable options:\n{}", options.iter().map(|o| format!("\t{o}")).collect::<Vec<_>>().join("\n"))]
    MustSpecify { group: String, options: Vec<String> },
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: {error}")]
    Yaml {
        path: String,
        error: yaml::YamlError,
    },
    #[error("{0}")]
    Override(overrides::OverrideError),
    #[error("Ambiguous value for argument '{0}'\n1. To use it as a list, use key=[value1,value2]\n2. To use it as string, quote the value: key=\\'value1,value2\\'\n3. To sweep over it, add --multirun to your command line")]
    Ambiguous(String),
    #[error("{0}")]
    NoMatch(String),
    #[error("{0}")]
    Interpolation(String),
    #[error("{0}")]
    Invalid(String),
}

fn missing_config_message(
    parent: &str,
    name: &str,
    group: Option<&str>,
    options: &[String],
) -> String {
    let mut m = format!("In '{parent}': Could not find '{name}'");
    if let (Some(g), false) = (group, options.is_empty()) {
        m.push_str(&format!("\n\nAvailable options in '{g}':\n"));
        m.push_str(
            &options
                .iter()
                .map(|o| format!("\t{o}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    m
}

/// An override value printed back the way it would be typed.
pub(crate) fn overrides_text(n: &Node) -> String {
    match n {
        Node::Str(s) => s.clone(),
        Node::Null => "null".into(),
        Node::Bool(b) => if *b { "true" } else { "false" }.into(),
        other => interp::python_str(other),
    }
}

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
        yaml::to_yaml(&self.tree)
    }
}

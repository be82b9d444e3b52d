//! What can go wrong composing a config.

use crate::overrides::OverrideError;

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
        error: orchard_yaml::YamlError,
    },
    #[error("{0}")]
    Override(OverrideError),
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

//! The flags of `orchard config show|sweep` (Hydra's `--config-dir`, `--config-name`, `--multirun` and its
//! override grammar) and what the commands print. Behind the `cli` feature.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::{sweep, Config, ConfigError};

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the composed config as YAML (what `python app.py --cfg job` prints), or JSON with --json.
    Show(ShowArgs),
    /// List the jobs of a sweep (`lr=0.1,0.01 seed=range(3)`) in the order Hydra's basic sweeper runs them.
    Sweep(ShowArgs),
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Directory holding the primary config and the config groups.
    #[arg(long, short = 'c', default_value = "conf")]
    pub config_dir: PathBuf,
    /// Primary config, without `.yaml`.
    #[arg(long, short = 'n', default_value = "config")]
    pub config_name: String,
    /// Resolve `${...}` interpolations before printing.
    #[arg(long)]
    pub resolve: bool,
    /// Print JSON instead of YAML (NaN and ±inf as the strings "nan", "inf", "-inf").
    #[arg(long)]
    pub json: bool,
    /// Treat sweeps (`a=1,2`, `range()`, `choice()`, `glob()`) as a multirun: one config per job.
    #[arg(long, short = 'm')]
    pub multirun: bool,
    /// Hydra overrides: key=value, +key=value, ++key=value, ~key, group=option, group@pkg=option.
    pub overrides: Vec<String>,
}

impl ConfigCommand {
    /// What the command prints: the composed config (YAML, or JSON), or each job of the sweep after a
    /// `# job #N: overrides` line (as JSON, a list of `{job, overrides, config}`).
    pub fn output(&self) -> Result<String, ConfigError> {
        let (ConfigCommand::Show(args) | ConfigCommand::Sweep(args)) = self;
        if matches!(self, ConfigCommand::Show(_)) && !args.multirun {
            return args.render(&Config::compose(&args.config_dir, &args.config_name, &args.overrides)?);
        }
        let jobs = sweep::sweep(&args.config_dir, &args.config_name, &args.overrides)?;
        if args.json {
            let mut out = Vec::new();
            for job in &jobs {
                let tree = if args.resolve { job.config.resolved()? } else { job.config.tree.clone() };
                out.push(serde_json::json!({ "job": job.number, "overrides": job.overrides, "config": tree.to_json() }));
            }
            return Ok(pretty(&serde_json::Value::Array(out)));
        }
        let mut text = String::new();
        for job in &jobs {
            text += &format!("# job #{}: {}\n", job.number, job.overrides.join(" "));
            text += &args.render(&job.config)?;
        }
        Ok(text)
    }
}

impl ShowArgs {
    fn render(&self, cfg: &Config) -> Result<String, ConfigError> {
        let tree = if self.resolve { cfg.resolved()? } else { cfg.tree.clone() };
        if tree.as_map().is_none() {
            return Err(ConfigError::Invalid("the composed config is not a mapping".into()));
        }
        Ok(match self.json {
            true => pretty(&tree.to_json()),
            false => orchard_yaml::to_yaml(&tree),
        })
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ConfigCommand,
    }

    fn output(dir: &std::path::Path, args: &[&str]) -> String {
        let dir = dir.to_str().unwrap();
        let argv = ["orchard"].iter().chain(args).copied().chain(["--config-dir", dir]);
        Cli::try_parse_from(argv).unwrap().command.output().unwrap()
    }

    #[test]
    fn show_and_sweep_print_what_hydra_composes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yaml"), "lr: 0.1\nname: ${lr}\n").unwrap();
        assert_eq!(output(dir.path(), &["show", "lr=0.2"]), "lr: 0.2\nname: ${lr}\n");
        assert_eq!(output(dir.path(), &["show", "--resolve", "--json"]), "{\n  \"lr\": 0.1,\n  \"name\": 0.1\n}\n");
        let sweep = output(dir.path(), &["sweep", "lr=1,2"]);
        assert_eq!(sweep, "# job #0: lr=1\nlr: 1\nname: ${lr}\n# job #1: lr=2\nlr: 2\nname: ${lr}\n");
    }
}

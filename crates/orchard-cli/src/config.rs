//! `orchard config show|sweep`: Hydra's composition from the command line.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand};
use orchard_config::{sweep, Config};

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
    config_dir: PathBuf,
    /// Primary config, without `.yaml`.
    #[arg(long, short = 'n', default_value = "config")]
    config_name: String,
    /// Resolve `${...}` interpolations before printing.
    #[arg(long)]
    resolve: bool,
    /// Print JSON instead of YAML (NaN and ±inf as the strings "nan", "inf", "-inf").
    #[arg(long)]
    json: bool,
    /// Treat sweeps (`a=1,2`, `range()`, `choice()`, `glob()`) as a multirun: one config per job.
    #[arg(long, short = 'm')]
    multirun: bool,
    /// Hydra overrides: key=value, +key=value, ++key=value, ~key, group=option, group@pkg=option.
    overrides: Vec<String>,
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Show(args) if !args.multirun => {
            let cfg = Config::compose(&args.config_dir, &args.config_name, &args.overrides)?;
            print_config(&cfg, &args)
        }
        ConfigCommand::Show(args) | ConfigCommand::Sweep(args) => {
            let jobs = sweep::sweep(&args.config_dir, &args.config_name, &args.overrides)?;
            if args.json {
                let mut out = Vec::new();
                for job in &jobs {
                    let tree = if args.resolve {
                        job.config.resolved()?
                    } else {
                        job.config.tree.clone()
                    };
                    out.push(serde_json::json!({ "job": job.number, "overrides": job.overrides, "config": tree.to_json() }));
                }
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            for job in &jobs {
                println!("# job #{}: {}", job.number, job.overrides.join(" "));
                print_config(&job.config, &args)?;
            }
            Ok(())
        }
    }
}

fn print_config(cfg: &Config, args: &ShowArgs) -> anyhow::Result<()> {
    let tree = if args.resolve {
        cfg.resolved()?
    } else {
        cfg.tree.clone()
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&tree.to_json())?);
    } else {
        print!("{}", orchard_yaml::to_yaml(&tree));
    }
    if tree.as_map().is_none() {
        bail!("the composed config is not a mapping");
    }
    Ok(())
}

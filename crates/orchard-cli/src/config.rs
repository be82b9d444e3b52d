//! `orchard config show|sweep`: Hydra's composition from the command line.

pub fn run(cmd: orchard_config::cli::ConfigCommand) -> anyhow::Result<()> {
    print!("{}", cmd.output()?);
    Ok(())
}

//! `remote add/list/modify/default/remove`: editing the `[remote "name"]` sections of `.dvc/config` with
//! DVC's rules (names lowercased, relative local paths stored relative to the config file).

use std::path::{Component, Path, PathBuf};

use crate::config::{Config, Level};
use crate::error::{DataError, Result};
use crate::fsutil;
use crate::repo::Repo;

#[derive(Clone, Debug, serde::Serialize)]
pub struct RemoteInfo {
    pub name: String,
    pub url: String,
    pub default: bool,
}

pub fn list(repo: &Repo) -> Vec<RemoteInfo> {
    let default = repo.config.default_remote().map(str::to_string);
    repo.config
        .remotes()
        .into_iter()
        .map(|r| RemoteInfo {
            default: default.as_deref() == Some(r.name.as_str()),
            name: r.name,
            // Relative local paths are shown resolved, as `dvc remote list` shows them.
            url: if r.url.contains("://") || Path::new(&r.url).is_absolute() {
                r.url
            } else {
                fsutil::normalize(&repo.dvc_dir.join(&r.url)).display().to_string()
            },
        })
        .collect()
}

pub fn add(
    repo: &mut Repo,
    cwd: &Path,
    name: &str,
    url: &str,
    make_default: bool,
    force: bool,
    level: Level,
) -> Result<()> {
    let name = name.to_lowercase();
    validate_name(&name)?;
    if repo.config.remote(&name).is_some() && !force {
        return Err(DataError::RemoteExists(name));
    }
    let url = store_url(&repo.dvc_dir, cwd, url);
    let section = Config::remote_section(&name);
    repo.config.edit(level, |ini| {
        // `-f` replaces the whole section, as in DVC.
        ini.sections.shift_remove(&section);
        ini.set(&section, "url", &url);
        if make_default {
            ini.set("core", "remote", &name);
        }
        Ok(())
    })
}

pub fn modify(
    repo: &mut Repo,
    name: &str,
    option: &str,
    value: Option<&str>,
    level: Level,
) -> Result<()> {
    let name = name.to_lowercase();
    if repo.config.remote(&name).is_none() {
        return Err(DataError::NoSuchRemote(name));
    }
    if !Config::is_remote_key(option) {
        return Err(DataError::Invalid(format!(
            "configuration error: extra keys not allowed @ data['remote']['{name}']['{option}']"
        )));
    }
    let section = Config::remote_section(&name);
    repo.config.edit(level, |ini| {
        match value {
            Some(v) => ini.set(&section, option, v),
            None => ini.unset(&section, option),
        }
        Ok(())
    })
}

pub fn set_default(repo: &mut Repo, name: Option<&str>, level: Level) -> Result<()> {
    match name {
        Some(n) => {
            let n = n.to_lowercase();
            if repo.config.remote(&n).is_none() {
                return Err(DataError::Invalid(
                    "default remote must be present in remote list.".into(),
                ));
            }
            repo.config.edit(level, |ini| {
                ini.set("core", "remote", &n);
                Ok(())
            })
        }
        None => repo.config.edit(level, |ini| {
            ini.unset("core", "remote");
            Ok(())
        }),
    }
}

pub fn remove(repo: &mut Repo, name: &str) -> Result<()> {
    let name = name.to_lowercase();
    if repo.config.remote(&name).is_none() {
        return Err(DataError::NoSuchRemote(name));
    }
    let section = Config::remote_section(&name);
    let was_default = repo.config.default_remote() == Some(name.as_str());
    for level in [Level::Repo, Level::Local] {
        repo.config.edit(level, |ini| {
            ini.sections.shift_remove(&section);
            if was_default && ini.get("core", "remote") == Some(name.as_str()) {
                ini.unset("core", "remote");
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['"', '\'', '[', ']', '\n']) {
        return Err(DataError::Invalid(format!("invalid remote name '{name}'")));
    }
    Ok(())
}

/// URLs are kept as given, except relative local paths, which DVC stores relative to `.dvc/`.
fn store_url(dvc_dir: &Path, cwd: &Path, url: &str) -> String {
    if url.contains("://") || Path::new(url).is_absolute() {
        return url.to_string();
    }
    let abs = fsutil::normalize(&cwd.join(url));
    fsutil::posix(&relative(&abs, dvc_dir))
}

fn relative(path: &Path, base: &Path) -> PathBuf {
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// `config NAME [VALUE]`: reads or writes one option by its dotted name (`core.autostage`, `cache.type`,
/// `remote.<name>.<option>`), with DVC's option names.
pub fn config_option(
    repo: &mut Repo,
    name: &str,
    value: Option<&str>,
    unset: bool,
    level: Level,
) -> Result<Option<String>> {
    const CORE: &[&str] = &["remote", "autostage", "no_scm", "checksum_jobs", "site_cache_dir", "interactive"];
    const CACHE: &[&str] = &["type", "dir", "shared", "verify", "slow_link_warning"];
    let parts: Vec<&str> = name.split('.').collect();
    let (section, key) = match parts.as_slice() {
        ["core", k] if CORE.contains(k) => ("core".to_string(), *k),
        ["cache", k] if CACHE.contains(k) => ("cache".to_string(), *k),
        ["remote", r, k] if Config::is_remote_key(k) => {
            if repo.config.remote(r).is_none() && !(unset || value.is_none()) && *k != "url" {
                return Err(DataError::NoSuchRemote(r.to_string()));
            }
            (Config::remote_section(r), *k)
        }
        _ => {
            return Err(DataError::Invalid(format!(
                "configuration error: extra keys not allowed @ data['{}']",
                name.replace('.', "']['")
            )))
        }
    };
    if key == "type" {
        if let Some(v) = value {
            crate::config::parse_link_types(v)?;
        }
    }
    if unset {
        repo.config.edit(level, |ini| {
            ini.unset(&section, key);
            Ok(())
        })?;
        return Ok(None);
    }
    match value {
        None => match repo.config.get(&section, key) {
            Some(v) => Ok(Some(v.to_string())),
            None => Err(DataError::Invalid(format!("option '{name}' doesn't exist"))),
        },
        Some(v) => {
            repo.config.edit(level, |ini| {
                ini.set(&section, key, v);
                Ok(())
            })?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_local_urls_are_relative_to_the_dvc_folder() {
        assert_eq!(
            store_url(Path::new("/r/.dvc"), Path::new("/r"), "../storage"),
            "../../storage"
        );
        assert_eq!(
            store_url(Path::new("/r/.dvc"), Path::new("/r/sub"), "store"),
            "../sub/store"
        );
        assert_eq!(store_url(Path::new("/r/.dvc"), Path::new("/r"), "s3://b/p"), "s3://b/p");
    }
}

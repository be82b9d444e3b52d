//! Multirun: the jobs of a sweep, in the order Hydra's basic sweeper runs them (the cartesian product of the
//! swept overrides, the last one varying fastest).

use std::path::Path;

use crate::compose::{group_options, is_group};
use orchard_yaml::Node;
use crate::overrides::{parse_override, range_values, Override, Sweep, Value};
use crate::error::ConfigError;
use crate::Config;

/// One job of a sweep: its overrides (as typed for the job) and its composed config.
#[derive(Debug, Clone)]
pub struct Job {
    pub number: usize,
    pub overrides: Vec<String>,
    pub config: Config,
}

/// Expands the sweep overrides into one list of plain overrides per job.
pub fn expand(config_dir: &Path, overrides: &[String]) -> Result<Vec<Vec<String>>, ConfigError> {
    let parsed: Vec<Override> = overrides
        .iter()
        .map(|o| parse_override(o).map_err(ConfigError::Override))
        .collect::<Result<_, _>>()?;
    let mut axes: Vec<Vec<String>> = Vec::new();
    for o in &parsed {
        let prefix = prefix_of(o);
        match &o.value {
            Some(Value::Sweep(s)) => {
                let values: Vec<String> = match s {
                    Sweep::Choice(items) => items.iter().map(override_text).collect(),
                    Sweep::Range {
                        start,
                        stop,
                        step,
                        ints,
                    } => range_values(*start, *stop, *step, *ints)
                        .iter()
                        .map(override_text)
                        .collect(),
                    Sweep::Glob { include, exclude } => {
                        if !is_group(config_dir, &o.key) {
                            return Err(ConfigError::Invalid(format!(
                                "glob() needs a config group, and '{}' is not one",
                                o.key
                            )));
                        }
                        group_options(config_dir, &o.key)
                            .into_iter()
                            .filter(|opt| {
                                include.iter().any(|p| glob_match(p, opt))
                                    && !exclude.iter().any(|p| glob_match(p, opt))
                            })
                            .collect()
                    }
                };
                axes.push(
                    values
                        .into_iter()
                        .map(|v| format!("{prefix}={v}"))
                        .collect(),
                );
            }
            _ => axes.push(vec![o.input.clone()]),
        }
    }
    let mut jobs: Vec<Vec<String>> = vec![vec![]];
    for axis in axes {
        let mut next = Vec::with_capacity(jobs.len() * axis.len());
        for job in &jobs {
            for v in &axis {
                let mut j = job.clone();
                j.push(v.clone());
                next.push(j);
            }
        }
        jobs = next;
    }
    Ok(jobs)
}

/// Composes every job of a sweep.
pub fn sweep(
    config_dir: &Path,
    config_name: &str,
    overrides: &[String],
) -> Result<Vec<Job>, ConfigError> {
    expand(config_dir, overrides)?
        .into_iter()
        .enumerate()
        .map(|(number, job)| {
            Ok(Job {
                number,
                config: Config::compose(config_dir, config_name, &job)?,
                overrides: job,
            })
        })
        .collect()
}

fn prefix_of(o: &Override) -> String {
    use crate::overrides::OverrideKind::*;
    let sign = match o.kind {
        Change => "",
        Add => "+",
        ForceAdd => "++",
        Delete => "~",
    };
    match &o.package {
        Some(p) => format!("{sign}{}@{p}", o.key),
        None => format!("{sign}{}", o.key),
    }
}

/// A value written so that the override parser reads it back as the same value.
fn override_text(n: &Node) -> String {
    match n {
        Node::Str(s) => {
            let reparsed = crate::overrides::type_primitive(s);
            let plain = reparsed == Node::Str(s.clone())
                && !s.is_empty()
                && s.chars()
                    .all(|c| c.is_alphanumeric() || "_-./:+%*@?|$ ".contains(c))
                && s.trim() == s;
            if plain {
                s.clone()
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        Node::Float(f) => orchard_yaml::python::float_repr(*f),
        Node::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(override_text)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Node::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", override_text(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => crate::overrides::override_text(other),
    }
}

/// Shell-style glob with `*` and `?`.
fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(
        &pattern.chars().collect::<Vec<_>>(),
        &text.chars().collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cartesian_product_last_varies_fastest() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = expand(dir.path(), &["a=1,2".into(), "x=5".into(), "b=x,y".into()]).unwrap();
        assert_eq!(
            jobs,
            vec![
                vec!["a=1", "x=5", "b=x"],
                vec!["a=1", "x=5", "b=y"],
                vec!["a=2", "x=5", "b=x"],
                vec!["a=2", "x=5", "b=y"],
            ]
        );
        let jobs = expand(dir.path(), &["n=range(0,3)".into(), "s='a,b','c'".into()]).unwrap();
        assert_eq!(jobs.len(), 6);
        assert_eq!(jobs[0], vec!["n=0", "s='a,b'"]);
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "mysql"));
        assert!(glob_match("my*", "mysql"));
        assert!(!glob_match("pg?", "mysql"));
    }
}

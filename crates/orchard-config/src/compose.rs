//! Composition: a primary config, its defaults list (recursively), command-line overrides — one tree.
//!
//! Order, as Hydra 1.3 does it: each config's defaults are expanded depth-first in list order, the config's own
//! content goes where `_self_` stands (at the end when it is not listed), group options chosen on the command
//! line replace the ones in the defaults lists, and value overrides apply last.

use std::path::{Path, PathBuf};

use orchard_yaml::{merge, Node};
use crate::overrides::{parse_override, Override, OverrideKind, Value};
use orchard_yaml as yaml;
use crate::error::ConfigError;

/// One entry of a defaults list, after parsing.
#[derive(Debug, Clone)]
struct DefaultEntry {
    /// Group path relative to the config that lists it, or absolute with a leading '/'.
    group: Option<String>,
    /// Config name (the option of a group, or a plain config).
    options: Vec<String>,
    package: Option<String>,
    optional: bool,
    is_override: bool,
    is_self: bool,
}

impl DefaultEntry {
    /// `_self_`: where the listing config's own content is merged.
    fn self_marker() -> DefaultEntry {
        DefaultEntry {
            group: None,
            options: vec![],
            package: None,
            optional: false,
            is_override: false,
            is_self: true,
        }
    }
}

/// A config file resolved to where it lands.
#[derive(Debug, Clone)]
struct Loaded {
    /// Absolute package (dotted path in the result; "" is the root).
    package: String,
}

pub struct Composer<'a> {
    dir: &'a Path,
    /// Group choices from the command line: (absolute group path, package or None) → option(s).
    choices: Vec<GroupChoice>,
    trail: Vec<String>,
    /// Group entries met so far, as (group, package): a group may be chosen once.
    seen: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
struct GroupChoice {
    group: String,
    package: Option<String>,
    option: Option<Vec<String>>, // None: delete (~group)
    kind: OverrideKind,
    used: bool,
}

fn config_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.yaml"))
}

/// The options of a config group: the `.yaml` files in its folder, sorted.
pub fn group_options(dir: &Path, group: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join(group))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".yaml")
                        .or_else(|| name.strip_suffix(".yml"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub fn is_group(dir: &Path, group: &str) -> bool {
    !group.is_empty() && dir.join(group).is_dir()
}

/// Reads a config file: its `# @package` directive, defaults list and body.
fn read_config(
    dir: &Path,
    name: &str,
) -> Result<(Option<String>, Vec<DefaultEntry>, Node), ConfigError> {
    let path = config_file(dir, name);
    let alt = dir.join(format!("{name}.yml"));
    let path = if path.exists() {
        path
    } else if alt.exists() {
        alt
    } else {
        path
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let package = text
        .lines()
        .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        .find_map(|l| {
            l.trim_start()
                .strip_prefix('#')
                .map(str::trim)
                .and_then(|l| l.strip_prefix("@package"))
                .map(|p| p.trim().to_string())
        });
    let mut body = yaml::parse(&text).map_err(|e| ConfigError::Yaml {
        path: path.display().to_string(),
        error: e,
    })?;
    if !matches!(body, Node::Map(_)) {
        return Err(ConfigError::Invalid(format!(
            "{}: a config file must hold a mapping",
            path.display()
        )));
    }
    let defaults = match body.as_map_mut().and_then(|m| m.shift_remove("defaults")) {
        None => Vec::new(),
        Some(Node::List(items)) => items
            .iter()
            .map(|item| parse_default(item, name))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "In '{name}': the defaults list must be a list, not a {}",
                other.kind()
            )))
        }
    };
    Ok((package, defaults, body))
}

fn parse_default(item: &Node, parent: &str) -> Result<DefaultEntry, ConfigError> {
    let bad = || {
        ConfigError::Invalid(format!(
            "In '{parent}': invalid defaults list entry {}",
            item.to_json()
        ))
    };
    match item {
        Node::Str(s) if s == "_self_" => Ok(DefaultEntry::self_marker()),
        Node::Str(s) => {
            let (name, package) = match s.split_once('@') {
                Some((n, p)) => (n.to_string(), Some(p.to_string())),
                None => (s.clone(), None),
            };
            Ok(DefaultEntry {
                group: None,
                options: vec![name],
                package,
                optional: false,
                is_override: false,
                is_self: false,
            })
        }
        Node::Map(m) if m.len() == 1 => {
            let (raw_key, value) = m.iter().next().ok_or_else(bad)?;
            let mut key = raw_key.trim().to_string();
            let mut optional = false;
            let mut is_override = false;
            loop {
                if let Some(rest) = key.strip_prefix("optional ") {
                    optional = true;
                    key = rest.trim().to_string();
                } else if let Some(rest) = key.strip_prefix("override ") {
                    is_override = true;
                    key = rest.trim().to_string();
                } else {
                    break;
                }
            }
            let (group, package) = match key.split_once('@') {
                Some((g, p)) => (g.to_string(), Some(p.to_string())),
                None => (key.clone(), None),
            };
            let options = match value {
                Node::Null => vec![],
                Node::Str(s) => vec![s.clone()],
                Node::List(l) => l.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(&bad)).collect::<Result<_, _>>()?,
                Node::Int(i) => vec![i.to_string()],
                Node::Float(f) => vec![orchard_yaml::python::float_repr(*f)],
                Node::Bool(b) => vec![if *b { "true" } else { "false" }.to_string()],
                Node::Missing => vec!["???".to_string()],
                _ => return Err(bad()),
            };
            Ok(DefaultEntry {
                group: Some(group),
                options,
                package,
                optional,
                is_override,
                is_self: false,
            })
        }
        _ => Err(bad()),
    }
}

/// Where a config lands (Hydra's `_get_final_package`): the package written in the defaults entry
/// (relative to the parent's), else the file's `# @package` header (absolute), else the entry's group path as
/// written, with dots. `_global_` means the root, `_here_` the parent's package, `_group_` the group's path.
fn resolve_package(
    parent_pkg: &str,
    entry_pkg: Option<&str>,
    header: Option<&str>,
    rel_group: &str,
    abs_group: &str,
) -> String {
    let pkg = match (entry_pkg, header) {
        (Some(p), _) => {
            let p = if p == "_here_" {
                String::new()
            } else {
                p.to_string()
            };
            p.replace(
                "_group_",
                &format!("_global_.{}", abs_group.replace('/', ".")),
            )
        }
        (None, Some(h)) if h.is_empty() || h == "_global_" => "_global_".to_string(),
        (None, Some(h)) => format!("_global_.{h}"),
        (None, None) => rel_group.trim_start_matches('/').replace('/', "."),
    };
    let result = match (parent_pkg.is_empty(), pkg.is_empty()) {
        (true, _) => pkg,
        (_, true) => parent_pkg.to_string(),
        _ => format!("{parent_pkg}.{pkg}"),
    };
    match result.rfind("_global_") {
        Some(i) => result[i + "_global_".len()..]
            .trim_start_matches('.')
            .to_string(),
        None => result,
    }
}

impl<'a> Composer<'a> {
    fn choice_for(&mut self, group: &str, package: Option<&str>) -> Option<&mut GroupChoice> {
        // `db=x` chooses for the entry `db` (default package), `db@backup=x` for the entry `db@backup`.
        self.choices.iter_mut().find(|c| {
            c.group == group && c.kind != OverrideKind::Add && c.package.as_deref() == package
        })
    }

    /// Expands a config and its defaults depth-first into `out`, in merge order.
    #[allow(clippy::too_many_arguments)]
    fn expand(
        &mut self,
        name: &str,
        rel_group: &str,
        abs_group: &str,
        parent_pkg: &str,
        entry_pkg: Option<&str>,
        is_primary: bool,
        out: &mut Vec<(Loaded, Node)>,
    ) -> Result<(), ConfigError> {
        if self.trail.iter().any(|t| t == name) {
            return Err(ConfigError::Invalid(format!(
                "circular defaults list: {} -> {name}",
                self.trail.join(" -> ")
            )));
        }
        self.trail.push(name.to_string());
        let (header, mut defaults, body) = read_config(self.dir, name)?;
        let package = if is_primary {
            name.rsplit_once('/')
                .map(|(g, _)| g.replace('/', "."))
                .unwrap_or_default()
        } else {
            resolve_package(
                parent_pkg,
                entry_pkg,
                header.as_deref(),
                rel_group,
                abs_group,
            )
        };
        // The folder this config lives in: relative group paths in its defaults start there.
        let base_group = name
            .rsplit_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default();

        // `override` entries change another entry's option instead of adding one.
        let overrides: Vec<DefaultEntry> =
            defaults.iter().filter(|d| d.is_override).cloned().collect();
        defaults.retain(|d| !d.is_override);
        for o in overrides {
            let g = absolute_group(&base_group, o.group.as_deref().unwrap_or(""));
            let already = self
                .choices
                .iter()
                .any(|c| c.group == g && c.kind != OverrideKind::Add && c.package == o.package);
            if !already {
                self.choices.push(GroupChoice {
                    group: g,
                    package: o.package.clone(),
                    option: Some(o.options.clone()),
                    kind: OverrideKind::Change,
                    used: false,
                });
            }
        }
        if !defaults.iter().any(|d| d.is_self) {
            defaults.push(DefaultEntry::self_marker());
        }
        if is_primary {
            // `+group=option` from the command line adds entries after the primary config's own content.
            let adds: Vec<GroupChoice> = self
                .choices
                .iter()
                .filter(|c| c.kind == OverrideKind::Add)
                .cloned()
                .collect();
            for a in adds {
                defaults.push(DefaultEntry {
                    group: Some(format!("/{}", a.group)),
                    options: a.option.clone().unwrap_or_default(),
                    package: a.package.clone(),
                    optional: false,
                    is_override: false,
                    is_self: false,
                });
            }
        }
        for d in defaults {
            if d.is_self {
                out.push((
                    Loaded {
                        package: package.clone(),
                    },
                    body.clone(),
                ));
                continue;
            }
            match &d.group {
                None => {
                    // A plain config next to this one.
                    for opt in &d.options {
                        let target = if let Some(abs) = opt.strip_prefix('/') {
                            abs.to_string()
                        } else {
                            join_path(&base_group, opt)
                        };
                        if !config_file(self.dir, &target).exists() {
                            return Err(ConfigError::MissingConfig {
                                parent: name.to_string(),
                                name: target,
                                options: vec![],
                                group: None,
                            });
                        }
                        let entry_pkg = d.package.clone().or_else(|| Some("_here_".to_string()));
                        let parent = package.clone();
                        self.expand(
                            &target,
                            "",
                            &base_group,
                            &parent,
                            entry_pkg.as_deref(),
                            false,
                            out,
                        )?;
                    }
                }
                Some(g) => {
                    let group_abs = absolute_group(&base_group, g);
                    let key = (group_abs.clone(), d.package.clone());
                    if self.seen.contains(&key) {
                        let option = d.options.first().cloned().unwrap_or_default();
                        return Err(ConfigError::Invalid(format!(
                            "Multiple values for {group_abs}. To override a value use 'override {group_abs}: {option}'"
                        )));
                    }
                    self.seen.push(key);
                    let mut options = d.options.clone();
                    if let Some(choice) = self.choice_for(&group_abs, d.package.as_deref()) {
                        match (choice.kind, &choice.option) {
                            // A deletion naming another option than the one chosen leaves the entry, and stays
                            // unused: Hydra then refuses it.
                            (OverrideKind::Delete, Some(name)) if *name != options => {}
                            (OverrideKind::Delete, _) | (_, None) => {
                                choice.used = true;
                                options = vec![];
                            }
                            (_, Some(o)) => {
                                choice.used = true;
                                options = o.clone();
                            }
                        }
                    }
                    if options.iter().any(|o| o == "???") {
                        return Err(ConfigError::MustSpecify {
                            group: group_abs.clone(),
                            options: group_options(self.dir, &group_abs),
                        });
                    }
                    for opt in options {
                        let target = join_path(&group_abs, &opt);
                        if !config_file(self.dir, &target).exists()
                            && !self.dir.join(format!("{target}.yml")).exists()
                        {
                            if d.optional {
                                continue;
                            }
                            return Err(ConfigError::MissingConfig {
                                parent: name.to_string(),
                                name: target,
                                options: group_options(self.dir, &group_abs),
                                group: Some(group_abs.clone()),
                            });
                        }
                        let parent = package.clone();
                        self.expand(
                            &target,
                            g,
                            &group_abs,
                            &parent,
                            d.package.as_deref(),
                            false,
                            out,
                        )?;
                    }
                }
            }
        }
        self.trail.pop();
        Ok(())
    }
}

fn join_path(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

fn absolute_group(base: &str, g: &str) -> String {
    match g.strip_prefix('/') {
        Some(abs) => abs.to_string(),
        None => join_path(base, g),
    }
}

/// Places `body` at a dotted package path.
fn wrap(package: &str, body: Node) -> Node {
    if package.is_empty() {
        return body;
    }
    package.rsplit('.').fold(body, |inner, part| {
        let mut m = indexmap::IndexMap::new();
        m.insert(part.to_string(), inner);
        Node::Map(m)
    })
}

/// The result of composing: the config (without the `hydra` node), the group choices made, and the
/// `hydra.*` overrides, which Orchard accepts but does not apply to the job's config.
#[derive(Debug, Clone)]
pub struct Composed {
    pub config: Node,
    pub hydra_overrides: Vec<String>,
}

/// Composes `config_name` from `dir` with command-line overrides (no sweeps: see [`crate::sweep`]).
pub fn compose(
    dir: &Path,
    config_name: &str,
    overrides: &[String],
) -> Result<Composed, ConfigError> {
    let parsed = overrides
        .iter()
        .map(|o| parse_override(o).map_err(ConfigError::Override))
        .collect::<Result<Vec<_>, _>>()?;
    compose_parsed(dir, config_name, &parsed)
}

pub fn compose_parsed(
    dir: &Path,
    config_name: &str,
    overrides: &[Override],
) -> Result<Composed, ConfigError> {
    let config_name = config_name.strip_suffix(".yaml").unwrap_or(config_name);
    if !config_file(dir, config_name).exists() {
        return Err(ConfigError::PrimaryNotFound {
            name: config_name.to_string(),
            dir: dir.display().to_string(),
        });
    }
    let mut choices = Vec::new();
    let mut values: Vec<&Override> = Vec::new();
    let mut hydra_overrides = Vec::new();
    for o in overrides {
        if let Some(Value::Sweep(_)) = &o.value {
            return Err(ConfigError::Ambiguous(o.input.clone()));
        }
        if o.key == "hydra" || o.key.starts_with("hydra.") || o.key.starts_with("hydra/") {
            hydra_overrides.push(o.input.clone());
            continue;
        }
        if is_group(dir, &o.key) {
            let option = match (&o.kind, &o.value) {
                // `~group` deletes whatever is chosen; `~group=name` only that option (kept to compare).
                (OverrideKind::Delete, Some(Value::Single(Node::Str(s)))) => Some(vec![s.clone()]),
                (OverrideKind::Delete, _) => None,
                (_, Some(Value::Single(Node::Str(s)))) => Some(vec![s.clone()]),
                (_, Some(Value::Single(Node::List(items)))) => Some(
                    items
                        .iter()
                        .map(|i| {
                            if let Node::Str(s) = i {
                                s.clone()
                            } else {
                                i.to_json().to_string()
                            }
                        })
                        .collect(),
                ),
                (_, Some(Value::Single(Node::Null))) => Some(vec![]),
                (_, Some(Value::Single(other))) => Some(vec![other
                    .to_json()
                    .to_string()
                    .trim_matches('"')
                    .to_string()]),
                _ => None,
            };
            choices.push(GroupChoice {
                group: o.key.clone(),
                package: o.package.clone(),
                option,
                kind: o.kind,
                used: false,
            });
        } else {
            values.push(o);
        }
    }
    let mut composer = Composer {
        dir,
        choices,
        trail: Vec::new(),
        seen: Vec::new(),
    };
    let mut order = Vec::new();
    composer.expand(config_name, "", "", "", None, true, &mut order)?;
    for c in &composer.choices {
        if !c.used && c.kind == OverrideKind::Delete {
            let key = match &c.package {
                Some(p) => format!("{}@{p}", c.group),
                None => c.group.clone(),
            };
            let desc = match &c.option {
                Some(name) => format!("{key}={}", name.join(",")),
                None => key,
            };
            return Err(ConfigError::NoMatch(format!("Could not delete '{desc}'. No match in the defaults list")));
        }
        if !c.used && c.kind != OverrideKind::Add {
            let options = group_options(dir, &c.group);
            return Err(ConfigError::Override(crate::overrides::OverrideError {
                input: format!("{}={}", c.group, c.option.as_ref().map(|o| o.join(",")).unwrap_or_default()),
                message: format!(
                    "Could not override '{}'. No match in the defaults list.\nTo append to your default list use +{}={}",
                    c.group,
                    c.group,
                    c.option.as_ref().and_then(|o| o.first().cloned()).or_else(|| options.first().cloned()).unwrap_or_default()
                ),
                column: 1,
            }));
        }
    }
    let mut config = Node::empty_map();
    for (loaded, body) in order {
        merge(&mut config, wrap(&loaded.package, body));
    }
    for o in values {
        apply_value_override(&mut config, o)?;
    }
    Ok(Composed {
        config,
        hydra_overrides,
    })
}

fn apply_value_override(config: &mut Node, o: &Override) -> Result<(), ConfigError> {
    let key = &o.key;
    let value = match &o.value {
        Some(Value::Single(n)) => Some(n.clone()),
        Some(Value::Sweep(_)) => return Err(ConfigError::Ambiguous(o.input.clone())),
        None => None,
    };
    let exists = config.get_path(key).is_some();
    // The value as the user wrote it, for the errors that suggest another form of the override.
    let v = value.as_ref().map(crate::overrides::override_text).unwrap_or_default();
    match o.kind {
        OverrideKind::Change => {
            if !exists {
                return Err(ConfigError::NoMatch(format!(
                    "Could not override '{key}'.\nTo append to your config use +{key}={v}\nKey '{key}' is not in struct"
                )));
            }
            set_path(config, key, value.unwrap_or(Node::Null))
        }
        OverrideKind::Add => {
            if exists {
                return Err(ConfigError::NoMatch(format!(
                    "Could not append to config. An item is already at '{key}'.\nEither remove + prefix: '{key}={v}'\nOr add a second + to add or override '{key}': '++{key}={v}'"
                )));
            }
            set_path(config, key, value.unwrap_or(Node::Null))
        }
        OverrideKind::ForceAdd => set_path(config, key, value.unwrap_or(Node::Null)),
        OverrideKind::Delete => {
            let Some(current) = config.get_path(key) else {
                return Err(ConfigError::NoMatch(format!(
                    "Could not delete from config. '{key}' does not exist."
                )));
            };
            if let Some(v) = &value {
                if current != v {
                    return Err(ConfigError::NoMatch(format!(
                        "Could not delete from config. The value of '{key}' is {} and not {}.",
                        crate::overrides::override_text(current),
                        crate::overrides::override_text(v)
                    )));
                }
            }
            delete_path(config, key);
            Ok(())
        }
    }
}

fn set_path(config: &mut Node, key: &str, value: Node) -> Result<(), ConfigError> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = config;
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        match cur {
            Node::Map(m) => {
                if last {
                    match m.get_mut(*part) {
                        Some(existing) => *existing = value,
                        None => {
                            m.insert(part.to_string(), value);
                        }
                    }
                    return Ok(());
                }
                cur = m.entry(part.to_string()).or_insert_with(Node::empty_map);
                if !matches!(cur, Node::Map(_) | Node::List(_)) {
                    *cur = Node::empty_map();
                }
            }
            Node::List(l) => {
                let idx: usize = part.parse().map_err(|_| {
                    ConfigError::NoMatch(format!(
                        "Could not override '{key}': '{part}' is not a list index"
                    ))
                })?;
                let len = l.len();
                let slot = l.get_mut(idx).ok_or_else(|| {
                    ConfigError::NoMatch(format!(
                        "Could not override '{key}': index {idx} is out of range (list of {len})"
                    ))
                })?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                cur = slot;
            }
            _ => {
                return Err(ConfigError::NoMatch(format!(
                    "Could not override '{key}': '{part}' is inside a value"
                )))
            }
        }
    }
    Ok(())
}

fn delete_path(config: &mut Node, key: &str) {
    let (parent, last) = match key.rsplit_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, key),
    };
    let target = match parent {
        Some(p) => {
            let mut cur = Some(&mut *config);
            for part in p.split('.') {
                cur = match cur {
                    Some(Node::Map(m)) => m.get_mut(part),
                    Some(Node::List(l)) => part.parse::<usize>().ok().and_then(|i| l.get_mut(i)),
                    _ => None,
                };
            }
            cur
        }
        None => Some(config),
    };
    match target {
        Some(Node::Map(m)) => {
            m.shift_remove(last);
        }
        Some(Node::List(l)) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < l.len() {
                    l.remove(i);
                }
            }
        }
        _ => {}
    }
}

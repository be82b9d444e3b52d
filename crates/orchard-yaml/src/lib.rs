//! YAML the way the Python tools Orchard is compatible with read and write it.
//!
//! Hydra (through OmegaConf and PyYAML), DVC (through ruamel) and MLflow (PyYAML) all read YAML 1.1 and print
//! floats and strings with Python's rules. Every Orchard crate that reads or writes one of their files — a
//! Hydra config, a `.dvc` file, `dvc.yaml`/`dvc.lock`, an `MLmodel` — goes through this one crate, so a value
//! is typed and printed the same way everywhere:
//!
//! - [`node`]: the value tree ([`Node`]), with OmegaConf's kinds (`???` included) and its merge;
//! - [`read`]: one document into a [`Node`], plain scalars typed by PyYAML's YAML 1.1 rules;
//! - [`print`]: a [`Node`] printed as `OmegaConf.to_yaml` prints it;
//! - [`python`]: Python's `repr(float)` and `str()` of a value, and the float forms of YAML writers.

pub mod node;
pub mod print;
pub mod python;
pub mod read;

pub use node::{merge, Node};
pub use print::to_yaml;
pub use read::{parse, resolve_plain, YamlError};

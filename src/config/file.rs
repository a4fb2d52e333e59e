//! The `--config FILE` layer: a TOML file whose keys are the environment variables in lower
//! case, applied as the defaults of the same clap arguments, so a flag beats the environment,
//! which beats the file, which beats the built-in default. A bad value's error names the
//! variable the operator set, never the flag.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Command};

use super::variables;

/// The settings of a config file as `(VARIABLE, value)` pairs; empty without a file.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    path: Option<PathBuf>,
    values: Vec<(String, String)>,
}

/// The `--config` path among the arguments (after the program name), else `MFA_CONFIG`.
/// Found before the real parse, whose defaults come from the file.
pub fn config_path(
    args: impl IntoIterator<Item = OsString>,
    env: Option<OsString>,
) -> Option<PathBuf> {
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let a = a.to_string_lossy().into_owned();
        if a == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    env.map(PathBuf::from)
}

impl ConfigFile {
    /// Reads and checks the file: an unknown key is an error, so a typo is not ignored.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --config {}", path.display()))?;
        let values = Self::parse(&text).with_context(|| format!("--config {}", path.display()))?;
        Ok(Self {
            path: Some(path.to_owned()),
            values,
        })
    }

    /// `mfa_bind = "0.0.0.0:8080"`, `mfa_cors_origins = ["https://a", "https://b"]` into
    /// `(VARIABLE, value)` pairs, lists joined with commas.
    pub fn parse(text: &str) -> anyhow::Result<Vec<(String, String)>> {
        let table: toml::Table = toml::from_str(text).context("not valid TOML")?;
        let known = variables();
        let scalar = |v: &toml::Value| match v {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        };
        table
            .iter()
            .map(|(key, value)| {
                let var = key.to_ascii_uppercase();
                anyhow::ensure!(
                    known.contains(&var) && key == &var.to_ascii_lowercase(),
                    "unknown setting {key:?}"
                );
                let text = match value {
                    toml::Value::Array(items) => items
                        .iter()
                        .map(scalar)
                        .collect::<Option<Vec<_>>>()
                        .map(|v| v.join(",")),
                    other => scalar(other),
                };
                let text = text.with_context(|| {
                    format!("{key}: must be a string, number, boolean or a list of them")
                })?;
                Ok((var, text))
            })
            .collect()
    }

    fn get(&self, var: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(v, _)| v == var)
            .map(|(_, value)| value.as_str())
    }

    /// `cmd` and its subcommands with the file's values as the defaults of the arguments
    /// read from those variables (hidden in `--help` where the variable's value is).
    pub fn apply(&self, cmd: Command) -> Command {
        let with_default = |a: Arg| {
            let value = a
                .get_env()
                .and_then(|v| v.to_str())
                .and_then(|v| self.get(v));
            match value {
                Some(v) => {
                    let secret = a.is_hide_env_values_set();
                    // clap takes owned defaults only with its `string` feature; a few bytes
                    // per setting, once per start, are leaked instead.
                    let v: &'static str = v.to_owned().leak();
                    a.default_value(v).hide_default_value(secret)
                }
                None => a,
            }
        };
        cmd.mut_args(with_default)
            .mut_subcommands(|sub| self.apply(sub))
    }

    /// Parses `args` (program name first) into `T` with the file under the environment.
    pub fn parse_args<T: clap::Parser>(
        &self,
        args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    ) -> Result<T, clap::Error> {
        let mut cmd = self.apply(T::command());
        let mut matches = cmd
            .try_get_matches_from_mut(args)
            .map_err(|e| self.name_the_variable(&mut cmd, e))?;
        T::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))
    }

    /// A bad value's error as the operator set it: `MFA_TOTP_SKEW must be 0, 1, 2 or 3
    /// (got "9")`, never `--totp-skew`; other errors unchanged.
    fn name_the_variable(&self, cmd: &mut Command, e: clap::Error) -> clap::Error {
        if !matches!(
            e.kind(),
            ErrorKind::ValueValidation | ErrorKind::InvalidValue
        ) {
            return e;
        }
        let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
            return e;
        };
        let long = arg.trim_start_matches('-').split([' ', '=']).next();
        let Some((var, secret)) = long.and_then(|l| variable_of(cmd, l)) else {
            return e;
        };
        let why = match (e.kind(), e.get(ContextKind::ValidValue)) {
            (ErrorKind::InvalidValue, Some(ContextValue::Strings(valid))) => {
                format!("must be one of {}", valid.join(", "))
            }
            _ => std::error::Error::source(&e)
                .map_or_else(|| "is invalid".to_owned(), |s| s.to_string()),
        };
        let mut message = if why.starts_with("must") || why.starts_with("is ") {
            format!("{var} {why}")
        } else {
            format!("{var}: {why}")
        };
        if let Some(ContextValue::String(value)) = e.get(ContextKind::InvalidValue) {
            if !secret {
                message.push_str(&format!(" (got {value:?})"));
            }
            let from_file =
                self.get(&var) == Some(value.as_str()) && std::env::var_os(&var).is_none();
            if let (true, Some(path)) = (from_file, &self.path) {
                message.push_str(&format!(
                    ", set as {} in {}",
                    var.to_ascii_lowercase(),
                    path.display()
                ));
            }
        }
        cmd.error(ErrorKind::ValueValidation, message)
    }
}

/// The variable of the argument `--long` anywhere in `cmd`, and whether its value is secret.
fn variable_of(cmd: &Command, long: &str) -> Option<(String, bool)> {
    let here = cmd.get_arguments().find_map(|a| {
        let var = a.get_env()?.to_str()?;
        (a.get_long() == Some(long)).then(|| (var.to_owned(), a.is_hide_env_values_set()))
    });
    here.or_else(|| cmd.get_subcommands().find_map(|s| variable_of(s, long)))
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;

//! Turning a command line into a process to run with a validated configuration.
//!
//! A setting comes from four layers, each overriding the one before: the built-in defaults
//! (the `#[serde(default)]`s of the config structs), the TOML file given with `--config`,
//! `TESSERA_*` environment variables, then command-line flags. The layers are TOML tables keyed
//! by field name; the merged table is deserialized into the process's config struct
//! (`CatalogConfig`, `NodeConfig`, `RouterConfig` from the library crates, `DevConfig` from
//! `dev.rs`) and checked with its `validate()`. Whatever its source, a bad setting is refused
//! with a one-line [`ConfigError`] that starts with the field's name.
//!
//! What the flags are is `cli.rs`'s business; running the process is `run.rs`'s.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, ValueEnum};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_catalog::CatalogConfig;
use tessera_router::RouterConfig;
use tessera_shard_node::NodeConfig;
use toml::{Table, Value};

use crate::cli::{Cli, Command};
use crate::dev::DevConfig;

/// A process to run, with its validated configuration.
#[derive(Debug)]
pub enum Process {
    Dev(DevConfig),
    Catalog(CatalogConfig),
    Node(NodeConfig),
    Router(RouterConfig),
    Bench(crate::bench::BenchArgs),
    Health(crate::health::HealthArgs),
}

/// Why a command line did not become a [`Process`].
#[derive(Debug)]
pub enum LoadError {
    /// A usage error, or `--help` / `--version`: clap prints it and chooses the exit code.
    Usage(clap::Error),
    /// A setting is missing or wrong.
    Invalid(ConfigError),
}

/// A setting that is missing or wrong: one line that starts with the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl From<ConfigError> for LoadError {
    fn from(e: ConfigError) -> Self {
        LoadError::Invalid(e)
    }
}

/// A config struct that can check its own values (each library struct's `validate()`).
pub trait Validate {
    /// Checks the values; the message names the field at fault.
    fn validate(&self) -> Result<(), String>;
}

impl Validate for CatalogConfig {
    fn validate(&self) -> Result<(), String> {
        CatalogConfig::validate(self)
    }
}

impl Validate for NodeConfig {
    fn validate(&self) -> Result<(), String> {
        NodeConfig::validate(self)
    }
}

impl Validate for RouterConfig {
    fn validate(&self) -> Result<(), String> {
        RouterConfig::validate(self)
    }
}

impl Validate for DevConfig {
    fn validate(&self) -> Result<(), String> {
        DevConfig::validate(self)
    }
}

/// Parses the command line (reading `TESSERA_*` variables and the `--config` file) into the
/// process to run.
pub fn load<I, T>(args: I) -> Result<Process, LoadError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = Cli::command();
    let matches = command
        .try_get_matches_from_mut(&args)
        .map_err(|e| from_clap(e, &command, &args))?;
    let cli = Cli::from_arg_matches(&matches).map_err(LoadError::Usage)?;
    let Some((name, sub_matches)) = matches.subcommand() else {
        return Err(LoadError::Usage(
            command.error(ErrorKind::MissingSubcommand, "a subcommand is required"),
        ));
    };
    if let Command::Bench(args) = &cli.command {
        return bench_process(args, cli.config.as_deref());
    }
    let fields = command.find_subcommand(name).map(Fields::of).unwrap_or_default();
    let file = cli.config.as_deref().map(ConfigFile::read).transpose()?;
    let sources = Sources {
        matches: sub_matches,
        file: file.as_ref(),
        fields: &fields,
    };
    Ok(match &cli.command {
        Command::Dev(args) => Process::Dev(sources.config(args)?),
        Command::Catalog(args) => Process::Catalog(sources.config(args)?),
        Command::Node(args) => Process::Node(sources.config(args)?),
        Command::Router(args) => Process::Router(sources.config(args)?),
        Command::Bench(args) => bench_process(args, None)?,
        Command::Health(args) => Process::Health(args.clone()),
    })
}

/// `tessera bench`, whose settings are flags only. For `bench course`, `--config` names the
/// course's configuration (`a1`, `a2`, `a3`) instead of a file, as the course's analysis does.
fn bench_process(args: &crate::bench::BenchArgs, config: Option<&std::path::Path>) -> Result<Process, LoadError> {
    let mut args = args.clone();
    if let Some(crate::bench::BenchCommand::Course(course)) = &mut args.command {
        if let Some(name) = config {
            let name = name.to_string_lossy();
            course.config = crate::bench::CourseConfig::from_str(&name, true).map_err(|_| {
                ConfigError(format!(
                    "config: \"{name}\" is not one of the course's configurations a1, a2, a3, all, a4"
                ))
            })?;
        }
    }
    Ok(Process::Bench(args))
}

/// Where one subcommand's settings come from.
struct Sources<'a> {
    /// The subcommand's flags and `TESSERA_*` variables, as clap parsed them.
    matches: &'a ArgMatches,
    /// The `--config` file, if any.
    file: Option<&'a ConfigFile>,
    fields: &'a Fields,
}

impl Sources<'_> {
    /// The config struct `C` from the file, environment and flag layers of the subcommand
    /// whose arguments are `args`, validated.
    fn config<A, C>(&self, args: &A) -> Result<C, ConfigError>
    where
        A: Serialize + DeserializeOwned,
        C: DeserializeOwned + Validate,
    {
        let file = match self.file {
            Some(file) => file.layer::<A>(self.fields)?,
            None => Table::new(),
        };
        let (env, flags) = split_by_source(args, self.matches)?;
        build(vec![file, env, flags], self.fields)
    }
}

/// Merges layers, lowest precedence first: a later layer's value replaces an earlier one's
/// (lists are replaced, not appended to).
pub fn merge(layers: impl IntoIterator<Item = Table>) -> Table {
    let mut merged = Table::new();
    for layer in layers {
        merged.extend(layer);
    }
    merged
}

/// Merges the layers over the config struct's defaults and validates the result.
pub fn build<C>(layers: Vec<Table>, fields: &Fields) -> Result<C, ConfigError>
where
    C: DeserializeOwned + Validate,
{
    let config: C = Value::Table(merge(layers))
        .try_into()
        .map_err(|e: toml::de::Error| fields.explain(&plain(e.message())))?;
    config.validate().map_err(ConfigError)?;
    Ok(config)
}

/// Splits the values clap parsed into those from the environment and those from flags; values
/// clap filled in itself (a flag's implicit `false`) belong to neither.
fn split_by_source<A: Serialize>(args: &A, matches: &ArgMatches) -> Result<(Table, Table), ConfigError> {
    let Value::Table(all) = Value::try_from(args).map_err(|e| ConfigError(format!("internal: {e}")))? else {
        return Err(ConfigError("internal: arguments are not a table".into()));
    };
    let (mut env, mut flags) = (Table::new(), Table::new());
    for (key, value) in all {
        match matches.value_source(&key) {
            Some(ValueSource::EnvVariable) => {
                env.insert(key, value);
            }
            Some(ValueSource::CommandLine) => {
                flags.insert(key, value);
            }
            _ => {}
        }
    }
    Ok((env, flags))
}

/// The settings of one subcommand: their keys, flags and environment variables, for messages.
#[derive(Debug, Default)]
pub struct Fields(Vec<Field>);

#[derive(Debug)]
struct Field {
    key: String,
    flag: String,
    env: Option<String>,
}

impl Fields {
    /// The settings of a subcommand, from its clap definition.
    pub fn of(command: &clap::Command) -> Fields {
        let fields = command
            .get_arguments()
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version" | "config"))
            .filter_map(|a| {
                Some(Field {
                    key: a.get_id().to_string(),
                    flag: format!("--{}", a.get_long()?),
                    env: a.get_env().map(|e| e.to_string_lossy().into_owned()),
                })
            })
            .collect();
        Fields(fields)
    }

    fn get(&self, key: &str) -> Option<&Field> {
        self.0.iter().find(|f| f.key == key)
    }

    fn keys(&self) -> String {
        self.0.iter().map(|f| f.key.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Turns a deserialization message into one that names the field and says how to set it.
    fn explain(&self, message: &str) -> ConfigError {
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(key, _)| key);
        let Some(key) = missing else {
            return ConfigError(message.to_string());
        };
        let mut text = format!("{key}: is required; give");
        match self.get(key) {
            Some(field) => {
                let _ = write!(text, " {}", field.flag);
                if let Some(env) = &field.env {
                    let _ = write!(text, ", set {env}");
                }
                let _ = write!(text, " or put `{key}` in the --config file");
            }
            None => {
                let _ = write!(text, " it in the --config file");
            }
        }
        ConfigError(text)
    }
}

/// A parsed `--config` file.
struct ConfigFile {
    path: PathBuf,
    table: Table,
}

impl ConfigFile {
    fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let shown = path.display();
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError(format!("config: cannot read {shown}: {e}")))?;
        let table = text.parse::<Table>().map_err(|e| {
            let place = e.span().map(|s| line_and_column(&text, s.start)).unwrap_or_default();
            let message = e.message().lines().next().unwrap_or("").trim();
            ConfigError(format!("config: cannot parse {shown}{place}: {message}"))
        })?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            table,
        })
    }

    /// The file's settings for a subcommand whose keys are the fields of `A`: unknown keys and
    /// values of the wrong type are refused, naming the key.
    fn layer<A: Serialize + DeserializeOwned>(&self, fields: &Fields) -> Result<Table, ConfigError> {
        let shown = self.path.display();
        let mut layer = Table::new();
        for (key, value) in &self.table {
            if fields.get(key).is_none() {
                return Err(ConfigError(format!(
                    "{key}: unknown key in {shown} (the keys here are: {})",
                    fields.keys()
                )));
            }
            // One key at a time, so that a type error is pinned on its key.
            let single = Table::from_iter([(key.clone(), value.clone())]);
            let parsed: A = Value::Table(single)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError(format!("{key}: {} in {shown}", plain(e.message()))))?;
            // Serializing back normalizes the value (e.g. one address becomes a list of one).
            if let Ok(Value::Table(mut normal)) = Value::try_from(&parsed) {
                if let Some(v) = normal.remove(key) {
                    layer.insert(key.clone(), v);
                }
            }
        }
        Ok(layer)
    }
}

/// A deserialization message without Rust type names ("expected u32").
fn plain(message: &str) -> String {
    ["u16", "u32", "u64", "usize"]
        .iter()
        .fold(message.to_string(), |m, ty| {
            m.replace(&format!("expected {ty}"), "expected a whole number")
        })
        .replace("expected path string", "expected a path string")
}

/// ", line L, column C" of a byte offset in a text.
fn line_and_column(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(", line {line}, column {column}")
}

/// Turns clap's "invalid value" errors (a flag or `TESSERA_*` variable that does not parse)
/// into a [`ConfigError`] naming the field; other clap errors stay usage errors.
fn from_clap(err: clap::Error, command: &clap::Command, args: &[OsString]) -> LoadError {
    if !matches!(err.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue) {
        return LoadError::Usage(err);
    }
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let (Some(arg), Some(value)) = (context(ContextKind::InvalidArg), context(ContextKind::InvalidValue)) else {
        return LoadError::Usage(err);
    };
    // `arg` reads like "--nodes <N>".
    let flag = arg.split_whitespace().next().unwrap_or(&arg);
    let found = command
        .get_subcommands()
        .flat_map(|c| c.get_arguments())
        .chain(command.get_arguments())
        .find(|a| a.get_long().is_some_and(|l| flag == format!("--{l}")));
    let Some(found) = found else {
        return LoadError::Usage(err);
    };
    let reason = std::error::Error::source(&err).map_or_else(
        || format!("\"{value}\" is not a valid value"),
        |source| source.to_string(),
    );
    // clap reads the variable only when the flag (or an alias) is absent.
    let on_command_line = args.iter().filter_map(|a| a.to_str()).any(|a| {
        let name = a.split('=').next().unwrap_or(a);
        found
            .get_long_and_visible_aliases()
            .into_iter()
            .flatten()
            .any(|l| name == format!("--{l}"))
    });
    let source = match found.get_env() {
        Some(env) if !on_command_line => env.to_string_lossy().into_owned(),
        _ => flag.to_string(),
    };
    LoadError::Invalid(ConfigError(format!("{}: {reason} (from {source})", found.get_id())))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, MutexGuard};

    use super::*;

    /// Tests that read the process environment (everything through `load`, as clap reads
    /// `TESSERA_*` itself) hold this lock, so that one test's variables never leak into another.
    static ENV_LOCK: Mutex<()> = Mutex::new(());

    /// The process environment for one test: no `TESSERA_*` variables but the given ones, the
    /// previous ones back on drop.
    struct Env {
        saved: Vec<(OsString, OsString)>,
        _lock: MutexGuard<'static, ()>,
    }

    impl Env {
        fn with(vars: &[(&str, &str)]) -> Env {
            let lock = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            let saved: Vec<(OsString, OsString)> = std::env::vars_os()
                .filter(|(k, _)| k.to_string_lossy().starts_with("TESSERA_"))
                .collect();
            for (key, _) in &saved {
                std::env::remove_var(key);
            }
            for (key, value) in vars {
                std::env::set_var(key, value);
            }
            Env { saved, _lock: lock }
        }
    }

    impl Drop for Env {
        fn drop(&mut self) {
            let current: Vec<OsString> = std::env::vars_os()
                .map(|(k, _)| k)
                .filter(|k| k.to_string_lossy().starts_with("TESSERA_"))
                .collect();
            for key in current {
                std::env::remove_var(key);
            }
            for (key, value) in &self.saved {
                std::env::set_var(key, value);
            }
        }
    }

    /// A config file in the temp directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(text: &str) -> TempFile {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let n = COUNT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("tessera-config-test-{}-{n}.toml", std::process::id()));
            std::fs::write(&path, text).expect("write temp config file");
            TempFile(path)
        }

        fn arg(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn table(text: &str) -> Table {
        text.parse().expect("test table")
    }

    fn dev_fields() -> Fields {
        Fields::of(Cli::command().find_subcommand("dev").expect("dev subcommand"))
    }

    fn load_ok(args: &[&str]) -> Process {
        let args = std::iter::once("tessera").chain(args.iter().copied());
        match load(args) {
            Ok(process) => process,
            Err(LoadError::Invalid(e)) => panic!("refused: {e}"),
            Err(LoadError::Usage(e)) => panic!("usage error: {e}"),
        }
    }

    fn load_err(args: &[&str]) -> String {
        let args = std::iter::once("tessera").chain(args.iter().copied());
        match load(args) {
            Ok(process) => panic!("accepted: {process:?}"),
            Err(LoadError::Invalid(e)) => e.0,
            Err(LoadError::Usage(e)) => panic!("usage error instead of a config error: {e}"),
        }
    }

    fn dev(process: Process) -> DevConfig {
        match process {
            Process::Dev(c) => c,
            other => panic!("not dev: {other:?}"),
        }
    }

    #[test]
    fn each_layer_overrides_the_ones_below() {
        let file = table("listen = \"10.0.0.1:1\"\ndata_dir = \"from-file\"\nnodes = 5\nreplicas = 2");
        let env = table("listen = \"10.0.0.2:2\"\nnodes = 6");
        let flags = table("listen = \"10.0.0.3:3\"");
        let c: DevConfig = build(vec![file, env, flags], &dev_fields()).expect("valid");
        assert_eq!(c.listen, "10.0.0.3:3", "flags beat the environment");
        assert_eq!(c.nodes, 6, "the environment beats the file");
        assert_eq!(c.data_dir, PathBuf::from("from-file"), "the file beats the defaults");
        assert_eq!(c.replicas, Some(2));

        let defaults: DevConfig = build(vec![Table::new()], &dev_fields()).expect("defaults are valid");
        assert_eq!(defaults.listen, "127.0.0.1:5433");
        assert_eq!(defaults.data_dir, PathBuf::from("./tessera-data"));
        assert_eq!((defaults.nodes, defaults.replicas()), (3, 3));
    }

    #[test]
    fn a_later_list_replaces_an_earlier_one() {
        let merged = merge([table("catalog = [\"a:1\", \"b:2\"]"), table("catalog = [\"c:3\"]")]);
        assert_eq!(merged.get("catalog"), Some(&Value::Array(vec!["c:3".into()])));
    }

    #[test]
    fn precedence_through_the_command_line() {
        let file = TempFile::new("listen = \"127.0.0.1:1001\"\ndata_dir = \"file-dir\"\nnodes = 5\nreplicas = 2\n");
        let _env = Env::with(&[("TESSERA_LISTEN", "127.0.0.1:1002"), ("TESSERA_NODES", "4")]);
        let c = dev(load_ok(&["dev", "--config", &file.arg(), "--listen", "127.0.0.1:1003"]));
        assert_eq!(c.listen, "127.0.0.1:1003");
        assert_eq!(c.nodes, 4);
        assert_eq!(c.data_dir, PathBuf::from("file-dir"));
        assert_eq!(c.replicas, Some(2));

        let c = dev(load_ok(&["dev", "--config", &file.arg()]));
        assert_eq!(c.listen, "127.0.0.1:1002", "the environment beats the file");
    }

    #[test]
    fn config_file_from_the_environment_and_before_the_subcommand() {
        let file = TempFile::new("nodes = 7\n");
        let _env = Env::with(&[("TESSERA_CONFIG", &file.arg())]);
        assert_eq!(dev(load_ok(&["dev"])).nodes, 7);
        drop(_env);
        let _env = Env::with(&[]);
        assert_eq!(dev(load_ok(&["--config", &file.arg(), "dev"])).nodes, 7);
    }

    #[test]
    fn standalone_processes_take_every_field() {
        let _env = Env::with(&[
            ("TESSERA_CATALOG", "127.0.0.1:7000, 127.0.0.1:7001"),
            ("TESSERA_UNSAFE_SKIP_FSYNC", "true"),
        ]);
        let Process::Node(node) = load_ok(&[
            "node",
            "--listen",
            "0.0.0.0:7100",
            "--advertise",
            "10.1.1.1:7100",
            "--data-dir",
            "n1",
            "--heartbeat-ms",
            "250",
        ]) else {
            panic!("not a node");
        };
        assert_eq!(
            node.catalog,
            vec!["127.0.0.1:7000".to_string(), "127.0.0.1:7001".to_string()]
        );
        assert_eq!(node.advertise.as_deref(), Some("10.1.1.1:7100"));
        assert_eq!(node.heartbeat_ms, 250);
        assert!(node.unsafe_skip_fsync);

        let Process::Catalog(catalog) = load_ok(&[
            "catalog",
            "--listen",
            "127.0.0.1:7000",
            "--data-dir",
            "c",
            "--replicas",
            "3",
            "--dead-after",
            "5000",
        ]) else {
            panic!("not a catalog");
        };
        assert_eq!((catalog.replicas, catalog.dead_after_ms), (3, 5000));

        let Process::Router(router) = load_ok(&[
            "router",
            "--listen",
            "127.0.0.1:5433",
            "--catalog",
            "127.0.0.1:7000",
            "--max-connections",
            "10",
        ]) else {
            panic!("not a router");
        };
        assert_eq!(router.catalog, vec!["127.0.0.1:7000".to_string()]);
        assert_eq!(router.max_connections, 10);

        let Process::Router(router) = load_ok(&[
            "router",
            "--listen",
            "127.0.0.1:5433",
            "--catalog",
            "127.0.0.1:7000",
            "--catalog",
            "127.0.0.1:7001",
        ]) else {
            panic!("not a router");
        };
        assert_eq!(router.catalog.len(), 2, "a repeated flag adds to the list");
    }

    #[test]
    fn file_keys_are_the_field_names() {
        let file = TempFile::new(
            "listen = \"127.0.0.1:7100\"\ncatalog = \"127.0.0.1:7000,127.0.0.1:7001\"\ndata_dir = \"n\"\n\
             heartbeat_ms = 300\nunsafe_skip_fsync = true\nadvertise = \"10.0.0.1:7100\"\n",
        );
        let _env = Env::with(&[("TESSERA_UNSAFE_SKIP_FSYNC", "false")]);
        let Process::Node(node) = load_ok(&["node", "--config", &file.arg()]) else {
            panic!("not a node");
        };
        assert_eq!(node.catalog.len(), 2, "one comma-separated string is a list");
        assert_eq!(node.heartbeat_ms, 300);
        assert!(!node.unsafe_skip_fsync, "the environment's false beats the file's true");

        let file = TempFile::new("listen = \"127.0.0.1:7000\"\ndata_dir = \"c\"\ndead_after_ms = 2000\n");
        let Process::Catalog(catalog) = load_ok(&["catalog", "--config", &file.arg()]) else {
            panic!("not a catalog");
        };
        assert_eq!(catalog.dead_after_ms, 2000);
    }

    #[test]
    fn invalid_settings_are_refused_naming_the_field() {
        let _env = Env::with(&[]);
        assert_eq!(
            load_err(&["dev", "--listen", "abc"]),
            "listen: \"abc\" is not a host:port address"
        );
        assert_eq!(load_err(&["dev", "--nodes", "0"]), "nodes: must be at least 1");
        assert_eq!(
            load_err(&["dev", "--nodes", "three"]),
            "nodes: \"three\" is not a whole number (from --nodes)"
        );
        assert!(load_err(&["catalog", "--data-dir", "c"])
            .starts_with("listen: is required; give --listen, set TESSERA_LISTEN"));
        assert!(load_err(&["node", "--listen", "127.0.0.1:0", "--data-dir", "n"]).starts_with("catalog: is required"));
        assert_eq!(
            load_err(&["router", "--listen", "127.0.0.1:0", "--catalog", "127.0.0.1:1,nope"]),
            "catalog: \"nope\" is not a host:port address"
        );
        assert_eq!(
            load_err(&[
                "catalog",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                "c",
                "--replicas",
                "0"
            ]),
            "replicas: 0 is out of range (1 to 9)"
        );
    }

    #[test]
    fn invalid_environment_values_name_the_variable() {
        let _env = Env::with(&[("TESSERA_NODES", "many")]);
        assert_eq!(
            load_err(&["dev"]),
            "nodes: \"many\" is not a whole number (from TESSERA_NODES)"
        );
        drop(_env);
        let _env = Env::with(&[("TESSERA_LISTEN", "nowhere")]);
        assert_eq!(load_err(&["dev"]), "listen: \"nowhere\" is not a host:port address");
    }

    #[test]
    fn bad_config_files_are_refused_naming_the_key() {
        let _env = Env::with(&[]);
        let unknown = TempFile::new("listen = \"127.0.0.1:5433\"\nshards = 4\n");
        let e = load_err(&["dev", "--config", &unknown.arg()]);
        assert!(e.starts_with("shards: unknown key in "), "{e}");
        assert!(
            e.ends_with("(the keys here are: listen, data_dir, nodes, replicas, http, tls, auth, pwfile)"),
            "{e}"
        );

        let wrong_type = TempFile::new("nodes = \"two\"\n");
        let e = load_err(&["dev", "--config", &wrong_type.arg()]);
        assert!(
            e.starts_with("nodes: invalid type: string \"two\", expected a whole number in "),
            "{e}"
        );

        let broken = TempFile::new("listen = \"127.0.0.1:5433\"\nnodes = = 3\n");
        let e = load_err(&["dev", "--config", &broken.arg()]);
        assert!(e.starts_with("config: cannot parse "), "{e}");
        assert!(e.contains(", line 2, column "), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");

        let e = load_err(&["dev", "--config", "/nonexistent/tessera.toml"]);
        assert!(e.starts_with("config: cannot read /nonexistent/tessera.toml: "), "{e}");

        let node_keys_for_dev = TempFile::new("catalog = [\"127.0.0.1:7000\"]\n");
        let e = load_err(&["dev", "--config", &node_keys_for_dev.arg()]);
        assert!(e.starts_with("catalog: unknown key"), "{e}");
    }

    #[test]
    fn help_and_version_are_not_config_errors() {
        let _env = Env::with(&[]);
        for args in [
            &["tessera", "--version"][..],
            &["tessera", "dev", "--help"],
            &["tessera"],
            &["tessera", "dev", "--bogus"],
        ] {
            assert!(
                matches!(load(args.iter().copied()), Err(LoadError::Usage(_))),
                "{args:?}"
            );
        }
    }
}

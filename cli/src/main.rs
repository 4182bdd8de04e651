//! warrenctl: manage Warren (or RabbitMQ) through its management HTTP API,
//! with rabbitmqctl's command names and column names, as lavinmqctl does
//! for LavinMQ.

mod api;
mod listing;
mod output;
mod password;
mod shovels;
mod super_streams;

use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use api::{segment, Api};
use listing::Listed;
use output::Formatter;

#[derive(Parser)]
#[command(
    name = "warrenctl",
    version,
    about = "Manage Warren (or RabbitMQ) through its management HTTP API"
)]
struct Cli {
    /// The management API's base URL.
    #[arg(long, env = "WARRENCTL_URL", default_value = "http://127.0.0.1:15672", global = true)]
    url: String,
    /// User to log in as.
    #[arg(
        short = 'u',
        long = "user",
        env = "WARRENCTL_USER",
        default_value = "guest",
        global = true
    )]
    login_user: String,
    /// Its password.
    #[arg(
        long = "password",
        env = "WARRENCTL_PASSWORD",
        default_value = "guest",
        global = true
    )]
    login_password: String,
    /// The vhost commands act on.
    #[arg(short = 'p', long = "vhost", default_value = "/", global = true)]
    target_vhost: String,
    /// How listings are printed.
    #[arg(long, value_enum, default_value = "table", global = true)]
    formatter: Formatter,
    /// Leave out the informational line before listings.
    #[arg(short = 'q', long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[command(rename_all = "snake_case")]
enum Command {
    /// Lists queues (columns as rabbitmqctl's: name messages consumers ...).
    ListQueues {
        columns: Vec<String>,
    },
    ListExchanges {
        columns: Vec<String>,
    },
    ListBindings {
        columns: Vec<String>,
    },
    ListConnections {
        columns: Vec<String>,
    },
    ListChannels {
        columns: Vec<String>,
    },
    ListConsumers {
        columns: Vec<String>,
    },
    ListUsers {
        columns: Vec<String>,
    },
    ListVhosts {
        columns: Vec<String>,
    },
    ListPermissions {
        columns: Vec<String>,
    },
    ListPolicies {
        columns: Vec<String>,
    },
    /// Lists runtime parameters (shovels): component name value.
    ListParameters {
        columns: Vec<String>,
    },
    /// The shovels and their state.
    ShovelStatus {
        columns: Vec<String>,
    },
    /// Sets a runtime parameter, e.g. `set_parameter shovel NAME '{...}'`.
    SetParameter {
        component: String,
        name: String,
        /// Its value, as JSON.
        value: String,
    },
    ClearParameter {
        component: String,
        name: String,
    },
    DeleteShovel {
        name: String,
    },
    /// Declares a partitioned stream: a consistent-hash exchange NAME and
    /// streams NAME-0 .. NAME-(N-1) bound to it with equal weights.
    AddSuperStream {
        name: String,
        #[arg(long, default_value_t = 3)]
        partitions: u32,
        /// Retention by age, e.g. 7D.
        #[arg(long = "max-age")]
        max_age: Option<String>,
        /// Retention by size, per partition.
        #[arg(long = "max-length-bytes")]
        max_length_bytes: Option<u64>,
    },
    /// Deletes a super stream's exchange and partitions.
    DeleteSuperStream {
        name: String,
    },
    /// Moves every message of a queue to another (a shovel that deletes
    /// itself when done), and waits for it unless --no-wait.
    MoveMessages {
        source: String,
        destination: String,
        #[arg(long = "no-wait")]
        no_wait: bool,
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    AddUser {
        user: String,
        password: String,
    },
    DeleteUser {
        user: String,
    },
    ChangePassword {
        user: String,
        password: String,
    },
    SetUserTags {
        user: String,
        tags: Vec<String>,
    },
    SetPermissions {
        user: String,
        configure: String,
        write: String,
        read: String,
    },
    ClearPermissions {
        user: String,
    },
    AddVhost {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    DeleteVhost {
        name: String,
    },
    SetPolicy {
        name: String,
        pattern: String,
        /// The definition, as JSON.
        definition: String,
        #[arg(long, default_value_t = 0)]
        priority: i64,
        #[arg(long = "apply-to", default_value = "all")]
        apply_to: String,
    },
    ClearPolicy {
        name: String,
    },
    PurgeQueue {
        queue: String,
    },
    DeleteQueue {
        queue: String,
        #[arg(long = "if-empty")]
        if_empty: bool,
        #[arg(long = "if-unused")]
        if_unused: bool,
    },
    CloseConnection {
        name: String,
        explanation: String,
    },
    /// Writes the definitions to a file ("-" for standard output).
    ExportDefinitions {
        file: String,
    },
    /// Reads definitions from a file ("-" for standard input).
    ImportDefinitions {
        file: String,
    },
    /// The node's figures and alarms.
    Status,
    /// The cluster's members: which run, which leads the metadata log.
    ClusterStatus,
    /// Waits until the node answers (and has no alarm).
    AwaitStartup {
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Prints the RabbitMQ SHA-256 hash of a password (for definitions).
    HashPassword {
        password: String,
    },
}

fn columns_or_default(columns: Vec<String>, listed: Listed) -> Vec<String> {
    if columns.is_empty() {
        listed.default_columns().iter().map(|c| c.to_string()).collect()
    } else {
        columns
    }
}

fn run(cli: Cli) -> Result<String, String> {
    let api = Api::new(&cli.url, &cli.login_user, &cli.login_password);
    let vhost = cli.target_vhost.as_str();
    let v = segment(vhost);
    let list = |listed: Listed, columns: Vec<String>| -> Result<String, String> {
        let rows = listed.rows(&api, vhost)?;
        let columns = columns_or_default(columns, listed);
        let mut out = String::new();
        if !cli.quiet && cli.formatter == Formatter::Table {
            out.push_str(&listed.title(vhost));
            out.push('\n');
        }
        out.push_str(&output::print(&rows, &columns, cli.formatter));
        Ok(out)
    };
    let done = |text: String| Ok(if cli.quiet { String::new() } else { text + "\n" });
    match cli.command {
        Command::ListQueues { columns } => list(Listed::Queues, columns),
        Command::ListExchanges { columns } => list(Listed::Exchanges, columns),
        Command::ListBindings { columns } => list(Listed::Bindings, columns),
        Command::ListConnections { columns } => list(Listed::Connections, columns),
        Command::ListChannels { columns } => list(Listed::Channels, columns),
        Command::ListConsumers { columns } => list(Listed::Consumers, columns),
        Command::ListUsers { columns } => list(Listed::Users, columns),
        Command::ListVhosts { columns } => list(Listed::Vhosts, columns),
        Command::ListPermissions { columns } => list(Listed::Permissions, columns),
        Command::ListPolicies { columns } => list(Listed::Policies, columns),
        Command::ListParameters { columns } => list(Listed::Parameters, columns),
        Command::ShovelStatus { columns } => list(Listed::Shovels, columns),
        Command::SetParameter { component, name, value } => {
            shovels::set_parameter(&api, vhost, &component, &name, &value)?;
            done(format!(
                "Setting runtime parameter \"{name}\" for component \"{component}\" to \"{value}\" in vhost \"{vhost}\" ..."
            ))
        }
        Command::ClearParameter { component, name } => {
            shovels::clear_parameter(&api, vhost, &component, &name)?;
            done(format!(
                "Clearing runtime parameter \"{name}\" for component \"{component}\" on vhost \"{vhost}\" ..."
            ))
        }
        Command::DeleteShovel { name } => {
            shovels::delete_shovel(&api, vhost, &name)?;
            done(format!("Deleting shovel {name} in vhost {vhost}"))
        }
        Command::AddSuperStream {
            name,
            partitions,
            max_age,
            max_length_bytes,
        } => {
            super_streams::add(&api, vhost, &name, partitions, max_age.as_deref(), max_length_bytes)?;
            done(format!(
                "Adding a super stream \"{name}\" of {partitions} partitions in vhost \"{vhost}\" ..."
            ))
        }
        Command::DeleteSuperStream { name } => {
            let deleted = super_streams::delete(&api, vhost, &name)?;
            done(format!(
                "Deleting super stream \"{name}\" ({deleted} partitions) in vhost \"{vhost}\" ..."
            ))
        }
        Command::MoveMessages {
            source,
            destination,
            no_wait,
            timeout,
        } => {
            let wait = (!no_wait).then(|| Duration::from_secs(timeout));
            done(shovels::move_messages(&api, vhost, &source, &destination, wait)?)
        }
        Command::AddUser { user, password } => {
            api.put(
                &format!("users/{}", segment(&user)),
                &json!({"password": password, "tags": ""}),
            )?;
            done(format!("Adding user \"{user}\" ..."))
        }
        Command::DeleteUser { user } => {
            api.delete(&format!("users/{}", segment(&user)), &[])?;
            done(format!("Deleting user \"{user}\" ..."))
        }
        Command::ChangePassword { user, password } => {
            let existing = api.get(&format!("users/{}", segment(&user)))?;
            let tags = existing.get("tags").cloned().unwrap_or(Value::Array(Vec::new()));
            api.put(
                &format!("users/{}", segment(&user)),
                &json!({"password": password, "tags": tags}),
            )?;
            done(format!("Changing password for user \"{user}\" ..."))
        }
        Command::SetUserTags { user, tags } => {
            let existing = api.get(&format!("users/{}", segment(&user)))?;
            let hash = existing.get("password_hash").cloned().unwrap_or(Value::from(""));
            let algorithm = existing.get("hashing_algorithm").cloned().unwrap_or(Value::Null);
            let body = json!({"password_hash": hash, "hashing_algorithm": algorithm, "tags": tags.join(",")});
            api.put(&format!("users/{}", segment(&user)), &body)?;
            done(format!("Setting tags for user \"{user}\" to [{}] ...", tags.join(", ")))
        }
        Command::SetPermissions {
            user,
            configure,
            write,
            read,
        } => {
            let body = json!({"configure": configure, "write": write, "read": read});
            api.put(&format!("permissions/{v}/{}", segment(&user)), &body)?;
            done(format!(
                "Setting permissions for user \"{user}\" in vhost \"{vhost}\" ..."
            ))
        }
        Command::ClearPermissions { user } => {
            api.delete(&format!("permissions/{v}/{}", segment(&user)), &[])?;
            done(format!(
                "Clearing permissions for user \"{user}\" in vhost \"{vhost}\" ..."
            ))
        }
        Command::AddVhost { name, description } => {
            let body = match description {
                Some(d) => json!({"description": d}),
                None => json!({}),
            };
            api.put(&format!("vhosts/{}", segment(&name)), &body)?;
            done(format!("Adding vhost \"{name}\" ..."))
        }
        Command::DeleteVhost { name } => {
            api.delete(&format!("vhosts/{}", segment(&name)), &[])?;
            done(format!("Deleting vhost \"{name}\" ..."))
        }
        Command::SetPolicy {
            name,
            pattern,
            definition,
            priority,
            apply_to,
        } => {
            let definition: Value =
                serde_json::from_str(&definition).map_err(|e| format!("the definition is not JSON: {e}"))?;
            let body =
                json!({"pattern": pattern, "definition": definition, "priority": priority, "apply-to": apply_to});
            api.put(&format!("policies/{v}/{}", segment(&name)), &body)?;
            done(format!("Setting policy \"{name}\" for pattern \"{pattern}\" to \"{definition}\" with priority \"{priority}\" for vhost \"{vhost}\" ..."))
        }
        Command::ClearPolicy { name } => {
            api.delete(&format!("policies/{v}/{}", segment(&name)), &[])?;
            done(format!("Clearing policy \"{name}\" on vhost \"{vhost}\" ..."))
        }
        Command::PurgeQueue { queue } => {
            api.delete(&format!("queues/{v}/{}/contents", segment(&queue)), &[])?;
            done(format!("Purging queue '{queue}' in vhost '{vhost}' ..."))
        }
        Command::DeleteQueue {
            queue,
            if_empty,
            if_unused,
        } => {
            let mut path = format!("queues/{v}/{}", segment(&queue));
            let mut conditions = Vec::new();
            if if_empty {
                conditions.push("if-empty=true");
            }
            if if_unused {
                conditions.push("if-unused=true");
            }
            if !conditions.is_empty() {
                path = format!("{path}?{}", conditions.join("&"));
            }
            api.delete(&path, &[])?;
            done(format!("Deleting queue '{queue}' on vhost '{vhost}' ..."))
        }
        Command::CloseConnection { name, explanation } => {
            api.delete(
                &format!("connections/{}", segment(&name)),
                &[("x-reason", &explanation)],
            )?;
            done(format!("Closing connection {name}, reason: {explanation}..."))
        }
        Command::ExportDefinitions { file } => {
            let definitions = api.get("definitions")?;
            let text = serde_json::to_string_pretty(&definitions).map_err(|e| e.to_string())?;
            if file == "-" {
                return Ok(text + "\n");
            }
            std::fs::write(&file, text).map_err(|e| format!("writing {file}: {e}"))?;
            done(format!("Exporting definitions in JSON to a file at \"{file}\" ..."))
        }
        Command::ImportDefinitions { file } => {
            let mut text = String::new();
            if file == "-" {
                std::io::stdin().read_to_string(&mut text).map_err(|e| e.to_string())?;
            } else {
                text = std::fs::read_to_string(&file).map_err(|e| format!("reading {file}: {e}"))?;
            }
            let definitions: Value = serde_json::from_str(&text).map_err(|e| format!("{file} is not JSON: {e}"))?;
            api.post("definitions", &definitions)?;
            done(format!("Importing definitions in JSON from a file at \"{file}\" ..."))
        }
        Command::ClusterStatus => {
            let overview = api.get("overview")?;
            let nodes = api.get("nodes")?;
            let members = nodes.as_array().cloned().unwrap_or_default();
            let name = |n: &Value| n.get("name").and_then(Value::as_str).unwrap_or("?").to_string();
            let this = overview.get("node").and_then(Value::as_str).unwrap_or("?");
            let cluster = overview.get("cluster_name").and_then(Value::as_str).unwrap_or("?");
            let mut out =
                format!("Cluster status of node {this} ...\nBasics\n\nCluster name: {cluster}\n\nDisk Nodes\n\n");
            for member in &members {
                out += &format!("{}\n", name(member));
            }
            out += "\nRunning Nodes\n\n";
            for member in members.iter().filter(|m| m.get("running") == Some(&Value::Bool(true))) {
                out += &format!("{}\n", name(member));
            }
            if let Some(leader) = members
                .iter()
                .find(|m| m.get("metadata_leader") == Some(&Value::Bool(true)))
            {
                out += &format!("\nMetadata leader: {}\n", name(leader));
            }
            done(out.trim_end().to_string())
        }
        Command::Status => {
            let overview = api.get("overview")?;
            let nodes = api.get("nodes")?;
            let this = overview.get("node").cloned().unwrap_or(Value::Null);
            let node = nodes
                .as_array()
                .and_then(|all| all.iter().find(|n| n.get("name") == Some(&this)).cloned())
                .unwrap_or(Value::Null);
            let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
            let mut out = format!(
                "Status of node {} ...\n",
                field(&overview, "node").as_str().unwrap_or("?")
            );
            out += &format!(
                "RabbitMQ version: {}\n",
                field(&overview, "rabbitmq_version").as_str().unwrap_or("?")
            );
            out += &format!(
                "Uptime (seconds): {}\n",
                field(&node, "uptime").as_u64().unwrap_or(0) / 1000
            );
            out += &format!(
                "Memory used: {} bytes, high watermark: {} bytes\n",
                field(&node, "mem_used"),
                field(&node, "mem_limit")
            );
            out += &format!(
                "Free disk space: {} bytes, low watermark: {} bytes\n",
                field(&node, "disk_free"),
                field(&node, "disk_free_limit")
            );
            let alarms: Vec<&str> = [("memory", "mem_alarm"), ("disk", "disk_free_alarm")]
                .iter()
                .filter(|(_, k)| field(&node, k).as_bool() == Some(true))
                .map(|(name, _)| *name)
                .collect();
            out += &format!(
                "Alarms: {}\n",
                if alarms.is_empty() {
                    "(none)".to_string()
                } else {
                    alarms.join(", ")
                }
            );
            let totals = field(&overview, "object_totals");
            out += &format!(
                "Connections: {}, channels: {}, queues: {}, consumers: {}\n",
                field(&totals, "connections"),
                field(&totals, "channels"),
                field(&totals, "queues"),
                field(&totals, "consumers")
            );
            for listener in field(&overview, "listeners").as_array().into_iter().flatten() {
                out += &format!(
                    "Listener: {}:{} ({})\n",
                    field(listener, "ip_address").as_str().unwrap_or("?"),
                    field(listener, "port"),
                    field(listener, "protocol").as_str().unwrap_or("?")
                );
            }
            Ok(out)
        }
        Command::AwaitStartup { timeout } => {
            let deadline = Instant::now() + Duration::from_secs(timeout);
            loop {
                match api.get("health/checks/ready-to-serve-clients") {
                    Ok(_) => return done("Node is ready".to_string()),
                    Err(e) if Instant::now() >= deadline => return Err(format!("the node did not start: {e}")),
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        }
        Command::HashPassword { password } => Ok(password::hash(&password) + "\n"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

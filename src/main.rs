//! The `regassist` command line: serve, migrate, check, users, audit, cache, backup, restore,
//! import, and its own shell completions and man page. No logic lives here; each command calls
//! the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use regassist::app;
use regassist::audit::{self, Actor, AuditLog};
use regassist::config::Config;
use regassist::db::Db;
use regassist::{accounts, backup, telemetry};

#[derive(Parser)]
#[command(
    name = "regassist",
    version = telemetry::LONG_VERSION,
    about = "Regulatory-affairs assistant for medical devices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Print the effective configuration (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Apply database migrations.
    Migrate,
    /// Check a dependency the way the health endpoints do; exit 1 when it fails.
    Check {
        #[arg(value_enum)]
        target: CheckTarget,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Verify or checkpoint the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage the response cache.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Import FDA files into the local mirror; the format is recognised from the content
    /// (foiclass.txt, pmn*.txt, openFDA JSON or zip, CSV with openFDA field names).
    Import {
        #[arg(required_unless_present = "download")]
        files: Vec<PathBuf>,
        /// Download FDA's current official files (classification and 510(k)s) and openFDA's
        /// device recall and enforcement files, then import them.
        #[arg(long)]
        download: bool,
        /// With --download: fetch from a copy of FDA's and openFDA's download sites at this
        /// address (the same paths) instead of the public sites.
        #[arg(long, requires = "download", value_name = "URL")]
        download_base: Option<String>,
    },
    /// Compute a recorded suggestion or predicate search (assistant interaction ID) again and
    /// print the comparison as JSON; exit 0 when the answer is identical, 1 when it is not.
    Replay { id: i64 },
    /// Embedded (SQLite) mode: write an online backup of the database to FILE.
    Backup { file: PathBuf },
    /// Embedded (SQLite) mode: replace the database with FILE after checking it; refused while a
    /// server runs; the old database is kept as `<db>.before-restore-<time>`.
    Restore { file: PathBuf },
    /// Print a shell completion script, e.g. `regassist completions bash > /etc/bash_completion.d/regassist`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `regassist man > /usr/local/share/man/man1/regassist.1`.
    Man,
}

#[derive(Clone, Copy, ValueEnum)]
enum CheckTarget {
    Database,
    Redis,
    /// One real call to the configured OPENFDA_BASE_URL (draws on the shared budget).
    Openfda,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a user; with --api-key, print a new API key (once) on the last line.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "user", value_parser = ["user", "auditor", "admin"])]
        role: String,
        #[arg(long)]
        api_key: bool,
    },
    /// Print a new API key (once, on the last line) for an existing local account: the way back
    /// in for an admin whose keys were lost or revoked. A disabled account gets none.
    IssueKey {
        #[arg(long)]
        email: String,
        /// A label for the key (shown in key lists).
        #[arg(long, default_value = "cli")]
        label: String,
        /// Days until the key expires (default: never).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=3650))]
        expires_in_days: Option<u16>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the chain; exit 1 when it is broken.
    Verify {
        /// A checkpoint file to check against (default: the configured one).
        #[arg(long)]
        checkpoint: Option<String>,
    },
    /// Sign the current head and write it to the checkpoint file (and stdout); exit 1 when the
    /// chain no longer holds the previous checkpoint.
    Checkpoint {
        /// After a deliberate restore to an older backup: keep the old checkpoint file as
        /// `<file>.superseded-<time>` and anchor the current chain.
        #[arg(long)]
        reanchor: bool,
    },
    /// Check an exported JSON or CSV range offline (no service, no database): hashes, links and
    /// the checkpoint it carries (its signature too when the checkpoint key is configured).
    VerifyExport { file: PathBuf },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Delete cached entries whose key starts with PREFIX (inside a response-cache namespace,
    /// e.g. `predicate_search`).
    Clear {
        #[arg(long)]
        prefix: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // These two need no configuration: they describe the command line itself.
    let page = match cli.command {
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "regassist", &mut text);
            Some(text)
        }
        Command::Man => {
            let mut text = Vec::new();
            // Writing into memory cannot fail.
            let _ = clap_mangen::Man::new(Cli::command()).render(&mut text);
            Some(text)
        }
        _ => None,
    };
    if let Some(text) = page {
        use std::io::Write;
        return match std::io::stdout().write_all(&text) {
            // A reader that stopped early (`| head`) is not an error.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("regassist: cannot write to stdout: {e}");
                ExitCode::FAILURE
            }
            _ => ExitCode::SUCCESS,
        };
    }
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("regassist: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("regassist: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("regassist: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { print_config } => {
            if print_config {
                println!("{}", config.redacted());
                return Ok(ExitCode::SUCCESS);
            }
            serve(config).await?;
        }
        Command::Migrate => {
            let db = Db::connect(&config).await?;
            db.migrate().await?;
            println!("migrations applied ({})", db.backend());
        }
        Command::Check { target } => return check(config, target).await,
        Command::Users {
            command:
                UsersCommand::Create {
                    email,
                    name,
                    role,
                    api_key,
                },
        } => {
            let audit = AuditLog::new(connect_migrated(&config).await?);
            let cli_actor = Actor {
                request_id: format!("cli-{}", uuid::Uuid::new_v4()),
                reason: Some("created with `regassist users create`".into()),
                ..Actor::default()
            };
            let user = accounts::create_user(&audit, &cli_actor, &email, &name, &role).await?;
            println!(
                "created user {} <{}> with role {}",
                user.id, user.email, user.role
            );
            if api_key {
                let actor = Actor {
                    id: Some(user.id),
                    email: Some(user.email.clone()),
                    ..cli_actor
                };
                let (_, key) = accounts::issue_key(&audit, &actor, user.id, "cli", None).await?;
                println!("API key (shown once, store it now):");
                println!("{key}");
            }
        }
        Command::Users {
            command:
                UsersCommand::IssueKey {
                    email,
                    label,
                    expires_in_days,
                },
        } => {
            let audit = AuditLog::new(connect_migrated(&config).await?);
            let expires_at = expires_in_days
                .map(|days| chrono::Utc::now() + chrono::Duration::days(i64::from(days)));
            let (key, text) =
                accounts::issue_key_for_local(&audit, &email, &label, expires_at).await?;
            println!(
                "issued API key {} ({}) for <{}>{}",
                key.id,
                key.prefix,
                email.to_lowercase(),
                key.expires_at
                    .map(|at| format!(", expires {at}"))
                    .unwrap_or_default()
            );
            println!("API key (shown once, store it now):");
            println!("{text}");
        }
        Command::Audit { command } => return audit_command(config, command).await,
        Command::Import {
            files,
            download,
            download_base,
        } => return import(config, files, download, download_base.as_deref()).await,
        Command::Cache {
            command: CacheCommand::Clear { prefix },
        } => {
            let db = Db::connect(&config).await?;
            let prefix = regassist::cache::clearable_prefix(&prefix)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "prefix {prefix:?} is outside the response cache (namespaces: {})",
                        regassist::cache::NAMESPACES.join(", ")
                    )
                })?
                .to_string();
            let state = app::build(config, db)?;
            let deleted = state.cache.delete_prefix(&prefix).await?;
            println!(
                "deleted {deleted} cached entries from {} with prefix {prefix:?}",
                state.cache.backend()
            );
        }
        Command::Replay { id } => {
            let db = connect_migrated(&config).await?;
            let state = app::build(config, db)?;
            let replay = state.assistant.replay(id).await?;
            println!("{}", serde_json::to_string_pretty(&replay)?);
            if !replay.identical {
                std::process::exit(1);
            }
        }
        Command::Backup { file } => {
            let db = connect_migrated(&config).await?;
            let bytes = backup::backup(&db, &file).await?;
            println!(
                "backup written to {} ({bytes} bytes), integrity ok",
                file.display()
            );
        }
        Command::Restore { file } => {
            if config.is_postgres() {
                anyhow::bail!("`regassist restore` is for SQLite; use scripts/restore-script.sh for PostgreSQL");
            }
            let target = backup::sqlite_path(config.database_url.expose())?;
            let kept = backup::restore(&file, &target).await?;
            println!("restored {} into {}", file.display(), target.display());
            if let Some(kept) = kept {
                println!(
                    "the previous database is kept as {} (with its -wal/-shm files, if any); to go \
                     back, stop the server and rename it to {}",
                    kept.display(),
                    target.display()
                );
            }
        }
        // Answered in `main` before the configuration is read.
        Command::Completions { .. } | Command::Man => {}
    }
    Ok(ExitCode::SUCCESS)
}

async fn connect_migrated(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(config).await?;
    if config.auto_migrate {
        db.migrate().await?;
    }
    Ok(db)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    tracing::info!(config = %config.redacted().replace('\n', " "), "starting");
    let listener = app::bind(&config).await?;
    let db = Db::connect(&config).await?;
    let state = app::start(config, db).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        database = state.db.backend(),
        cache = state.cache.backend(),
        startup_ms = started.elapsed().as_millis() as u64,
        "listening"
    );
    app::serve(state, listener, app::shutdown_signal()).await
}

async fn check(config: Config, target: CheckTarget) -> anyhow::Result<ExitCode> {
    if let CheckTarget::Openfda = target {
        return check_openfda(config).await;
    }
    let mut config = config;
    config.auto_migrate = false;
    let db = Db::connect(&config).await?;
    let state = app::build(config, db)?;
    let check = match target {
        CheckTarget::Database => regassist::http::health::check_database(&state.db).await,
        CheckTarget::Redis => regassist::http::health::check_redis(state.redis.as_ref()).await,
        // Answered above without a database; kept for an exhaustive match.
        CheckTarget::Openfda => return check_openfda(state.config.as_ref().clone()).await,
    };
    println!(
        "{}: {} ({})",
        check.status, check.message, check.execution_time_ms
    );
    Ok(if check.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Imports each file in turn; a failed file leaves the mirror as it was and makes the exit status 1.
async fn import(
    config: Config,
    files: Vec<PathBuf>,
    download: bool,
    download_base: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let db = connect_migrated(&config).await?;
    let mut files = files;
    if download {
        let dir = std::env::temp_dir().join("regassist-download");
        files.extend(regassist::mirror::download::download_all(&dir, download_base).await?);
    }
    let mut failed = false;
    for file in &files {
        match regassist::mirror::import_file(&db, file, true).await {
            Ok(summary) => {
                for error in &summary.errors {
                    eprintln!("  rejected {error}");
                }
                if summary.rejected > summary.errors.len() as u64 {
                    eprintln!(
                        "  … and {} more rejected rows (see the log)",
                        summary.rejected - summary.errors.len() as u64
                    );
                }
                println!("{summary}");
            }
            Err(e) => {
                eprintln!("regassist: {}: {e:#}", file.display());
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `regassist check openfda`: one call, no database; a quick verdict rather than long retries.
async fn check_openfda(mut config: Config) -> anyhow::Result<ExitCode> {
    config.openfda_tuning.max_retries = 1;
    config.openfda_tuning.deadline = config.openfda_timeout * 2;
    let limiter = match &config.redis_url {
        Some(url) => regassist::rate_limit::RateLimiter::redis(
            regassist::redis_link::RedisLink::connect(url.expose())?,
        ),
        None => regassist::rate_limit::RateLimiter::memory(),
    };
    let client = regassist::openfda::OpenFda::new(&config, limiter)?;
    match client.ping().await {
        Ok(page) => {
            println!(
                "ok: openFDA at {} answers ({} 510(k) records, data last updated {})",
                client.base_url(),
                page.total,
                page.last_updated.as_deref().unwrap_or("unknown")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "regassist: openFDA check failed at {}: {e}",
                client.base_url()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn audit_command(config: Config, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let key = audit::load_key(&config)?;
    if let AuditCommand::VerifyExport { file } = &command {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
        let report = audit::offline::verify_export(&text, key.as_deref());
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(if report.is_valid {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let db = Db::connect(&config).await?;
    let log = AuditLog::anchored(db, key, config.audit_checkpoint_file.clone());
    match command {
        AuditCommand::Verify { checkpoint } => {
            let v = log.verify(None, checkpoint.as_deref()).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(if v.is_valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Checkpoint { reanchor } => {
            if log.anchor().key().is_none() {
                anyhow::bail!("no checkpoint key: set AUDIT_CHECKPOINT_KEY (embedded mode creates one on the first `serve`)");
            }
            let mode = if reanchor {
                audit::Mode::Reanchor
            } else {
                audit::Mode::Extend
            };
            match log.checkpoint(mode).await? {
                audit::Outcome::Written(cp) | audit::Outcome::Unchanged(cp) => {
                    println!("{}", serde_json::to_string_pretty(&cp)?);
                    Ok(ExitCode::SUCCESS)
                }
                audit::Outcome::Empty => {
                    println!("the audit trail is empty; nothing to checkpoint");
                    Ok(ExitCode::SUCCESS)
                }
                audit::Outcome::Refused(why) => {
                    eprintln!("regassist: checkpoint refused, the previous one is kept: {why}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        // Answered above, without a database.
        AuditCommand::VerifyExport { .. } => Ok(ExitCode::FAILURE),
    }
}

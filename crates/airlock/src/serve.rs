//! `airlock serve`: load config, open the store, bootstrap the admin token,
//! bind the listeners, run until SIGINT or SIGTERM.

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;

use airlock_core::admin::{bootstrap_admin_token, AdminTokenStart};
use airlock_core::config::{relative_to, GatewayConfig};
use airlock_core::GatewayState;
use airlock_store::vault::MasterKey;

use crate::cli::{LogFormat, ServeArgs};

pub fn run(args: ServeArgs) -> Result<()> {
    let config_path = match args.config {
        Some(path) => path,
        None => {
            let default = PathBuf::from("airlock.yaml");
            if !default.exists() {
                bail!(
                    "no configuration: pass --config FILE or create ./airlock.yaml \
                     (examples/airlock.yaml shows every field)"
                );
            }
            default
        }
    };
    let (config, settings) =
        GatewayConfig::load(&config_path).map_err(|error| anyhow!("{error}"))?;
    init_logging(args.log_format, &config.log);
    let policy_path = config
        .policy
        .as_ref()
        .map(|policy| relative_to(&config_path, policy));
    if let Some(path) = &policy_path {
        // Validate before any state is created: a bad policy stops start-up.
        airlock_policy::Policy::from_file(path).map_err(|error| anyhow!("{error}"))?;
    }
    create_data_dir(&args.data_dir)?;
    let shared_store = crate::store_open::is_shared(&config.store);
    let store = crate::store_open::open(
        &config.store,
        &args.data_dir,
        config.recording.sync_mode().syncs(),
    )?;
    let master_key_env = std::env::var("AIRLOCK_MASTER_KEY").ok();
    if shared_store
        && master_key_env.is_none()
        && !args
            .data_dir
            .join(airlock_store::vault::MASTER_KEY_FILE)
            .exists()
    {
        // A key made up here would differ from the other replicas': their
        // credentials would not decrypt and the audit chain would break.
        bail!(
            "a shared store needs the master key every replica uses: set AIRLOCK_MASTER_KEY \
             (64 hex characters, e.g. from `openssl rand -hex 32`) or put it in {}",
            args.data_dir
                .join(airlock_store::vault::MASTER_KEY_FILE)
                .display()
        );
    }
    let vault = MasterKey::load(master_key_env.as_deref(), &args.data_dir)?;
    if shared_store {
        // A digest of a key derived for this purpose only: the store never
        // sees the master key, and a replica with another key stops here
        // instead of writing credentials and a chain the others cannot read.
        if !store.claim_key_check(&vault.key_check())? {
            bail!(
                "AIRLOCK_MASTER_KEY is not the master key the other replicas of this shared \
                 store use: start every replica with the same key"
            );
        }
    }
    let admin_env = std::env::var("AIRLOCK_ADMIN_TOKEN").ok();
    match bootstrap_admin_token(&*store, admin_env.as_deref())? {
        AdminTokenStart::Generated(generated) => eprintln!(
            "\n  airlock admin token (shown once; store it safely):\n\n    {generated}\n\n  \
             export AIRLOCK_ADMIN_TOKEN={generated}\n"
        ),
        AdminTokenStart::EnvironmentDiffers => {
            let dir = args.data_dir.display();
            eprintln!(
                "\n  warning: AIRLOCK_ADMIN_TOKEN is not the admin token stored in {dir}\n  \
                 (the token is stored on the first start and the environment is not read again),\n  \
                 so admin commands using it will be refused with 401. Either use the token\n  \
                 printed at the first start, or make the exported one the admin token:\n\n    \
                 airlock admin-token rotate --data-dir {dir}\n"
            );
            tracing::warn!("AIRLOCK_ADMIN_TOKEN differs from the stored admin token; admin commands using it get 401 (airlock admin-token rotate)");
        }
        AdminTokenStart::FromEnvironment | AdminTokenStart::Stored => {}
    }
    let live_policy = airlock_core::policies::bootstrap(&*store, policy_path.as_deref())
        .map_err(|error| anyhow!("{error}"))?;
    if let Some(path) = &policy_path {
        if let Some(version) = airlock_core::policies::file_differs_from_live(&*store, path) {
            let file = path.display();
            eprintln!(
                "\n  warning: {file} differs from the live policy v{version}: the file is loaded\n  \
                 on the first start only, so your edits are not live. Apply them with:\n\n    \
                 airlock policy apply {file}\n"
            );
            tracing::warn!(file = %file, live = version, "the policy file differs from the live policy; apply it with: airlock policy apply FILE");
        }
    }
    if live_policy.policy.is_none() {
        tracing::warn!("no policy is loaded: every command will be refused until one is applied (airlock policy apply FILE)");
    } else {
        tracing::info!(version = live_policy.version, "policy loaded");
    }
    let webhooks = config
        .notifications
        .resolve()
        .map_err(|error| anyhow!("notifications: {error}"))?;
    let notifier = if webhooks.is_empty() {
        airlock_notify::Notifier::disabled()
    } else {
        airlock_notify::Notifier::start(webhooks)
            .map_err(|error| anyhow!("notifications: {error}"))?
    };
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let workers = config.runtime.workers(cores);
    let state = GatewayState::new(
        config,
        settings,
        config_path.clone(),
        args.data_dir.clone(),
        store,
        vault,
        live_policy,
        notifier,
    )
    .context("cannot start the gateway")?;
    tracing::info!(workers, "runtime workers");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(Arc::new(state)))
}

fn create_data_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path)
        .with_context(|| format!("cannot create data directory {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict permissions of {}", path.display()))?;
    }
    Ok(())
}

async fn serve(state: Arc<GatewayState>) -> Result<()> {
    let admin_address = state.settings.admin_listen;
    let postgres_address = state.settings.postgres_listen;
    let admin = TcpListener::bind(admin_address)
        .await
        .with_context(|| format!("cannot listen on {admin_address} (listen.admin)"))?;
    let postgres = TcpListener::bind(postgres_address)
        .await
        .with_context(|| format!("cannot listen on {postgres_address} (listen.postgres)"))?;
    let mysql = match state.settings.mysql_listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (listen.mysql)"))?,
        ),
        None => None,
    };
    let mysql_address = mysql
        .as_ref()
        .and_then(|listener| listener.local_addr().ok())
        .map(|address| address.to_string())
        .unwrap_or_else(|| "off".into());
    tracing::info!(admin = %admin.local_addr()?, postgres = %postgres.local_addr()?, mysql = %mysql_address, "airlock listening");
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let pg_task = tokio::spawn(airlock_pg_gateway::server::run_postgres_listener(
        Arc::clone(&state),
        postgres,
        shutdown_rx.clone(),
    ));
    let mysql_task = mysql.map(|listener| {
        tokio::spawn(airlock_mysql_gateway::server::run_mysql_listener(
            Arc::clone(&state),
            listener,
            shutdown_rx.clone(),
        ))
    });
    let http_task = start_http(&state, &shutdown_rx).await?;
    let pruning = tokio::spawn(airlock_core::audit::run_pruning(Arc::clone(&state)));
    let wakeups = tokio::spawn(airlock_core::wakeups::run_wakeups(Arc::clone(&state)));
    if !state.config.recording.enabled {
        tracing::warn!("recording.enabled is false: commands are NOT recorded (for measuring the recorder only)");
    }
    // The web UI at /ui beside the API (an empty router when ui.enabled is false).
    let router =
        airlock_api::router(Arc::clone(&state)).merge(airlock_web::router(Arc::clone(&state)));
    let mut admin_shutdown = shutdown_rx.clone();
    let admin_task = tokio::spawn(async move {
        // The peer address feeds the API's lockout per source.
        axum::serve(
            admin,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = admin_shutdown.wait_for(|stop| *stop).await;
        })
        .await
    });
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    let _ = pg_task.await;
    if let Some(mysql_task) = mysql_task {
        let _ = mysql_task.await;
    }
    if let Some(task) = http_task {
        let _ = task.await;
    }
    let _ = admin_task.await;
    pruning.abort();
    wakeups.abort();
    // Sessions are told to end at once; give their last records a moment.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let recorder_state = Arc::clone(&state);
    let closed = tokio::task::spawn_blocking(move || {
        recorder_state
            .recorder
            .close(&*recorder_state.store, std::time::Duration::from_secs(10))
    })
    .await
    .unwrap_or(false);
    if closed {
        tracing::info!("audit journal indexed and removed");
    } else {
        tracing::warn!("the audit journal is kept; the next start copies what it holds");
    }
    Ok(())
}

/// Binds `listen.http` and starts the HTTP API gateway, when it is to run.
async fn start_http(
    state: &Arc<GatewayState>,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(address) = state.settings.http_listen else {
        return Ok(None);
    };
    let gateway = airlock_http_gateway::HttpGateway::new(Arc::clone(state))
        .context("cannot start the HTTP gateway")?;
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} (listen.http)"))?;
    tracing::info!(http = %listener.local_addr()?, "airlock listening for HTTP API clients");
    Ok(Some(tokio::spawn(airlock_http_gateway::run_http_listener(
        Arc::new(gateway),
        listener,
        shutdown.clone(),
    ))))
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Where log lines go: the log's own handle on standard error, taken at
/// start-up. libpg_query's source (the syntax check) can point file
/// descriptor 2 at a pipe for the length of a parse; lines written to fd 2
/// meanwhile would be lost, lines written to this duplicate reach the real
/// standard error. (Not observed in our builds: defence in depth.)
fn log_writer() -> tracing_subscriber::fmt::writer::BoxMakeWriter {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
            return tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(
                std::fs::File::from(fd),
            ));
        }
    }
    tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr)
}

/// Starts the log: `--log-format` (or `AIRLOCK_LOG_FORMAT`) over
/// `log.format`; `AIRLOCK_LOG`, then `RUST_LOG`, over `log.level`.
fn init_logging(flag: Option<LogFormat>, options: &airlock_core::config::LogOptions) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&options.level));
    let format = flag.unwrap_or(if options.format == "json" {
        LogFormat::Json
    } else {
        LogFormat::Text
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(log_writer());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

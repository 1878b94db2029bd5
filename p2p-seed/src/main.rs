//! `p2p-seed`: see the crate docs and `p2p-seed --help`.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use p2p_seed::cli::Args;
use p2p_seed::status::status_line;
use p2p_seed::{SeedSet, http};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "p2p-seed failed");
            eprintln!("p2p-seed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), p2p_seed::Error> {
    let plan = args.plan()?;
    let set = Arc::new(SeedSet::start(&plan.chains, &plan.options).await?);
    let http_task = match plan.metrics_addr {
        Some(addr) => match http::bind(addr).await {
            Ok(l) => {
                tracing::info!(%addr, "serving /metrics, /status and /peers");
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let src: Arc<dyn http::Source> = set.clone();
                Some((
                    tx,
                    tokio::spawn(http::serve(l, src, async move {
                        let _ = rx.await;
                    })),
                ))
            }
            Err(e) => {
                set.stop().await;
                return Err(e);
            }
        },
        None => None,
    };
    let stop = stop_signal();
    tokio::pin!(stop);
    let every = plan.status_interval;
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = tick.tick() => if !every.is_zero() {
                for s in set.statuses() {
                    println!("{}", status_line(&s));
                }
            },
            () = &mut stop => break,
        }
    }
    tracing::info!("stopping");
    if let Some((tx, task)) = http_task {
        let _ = tx.send(());
        let _ = task.await;
    }
    set.stop().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

//! The `sluice` binary: logging setup, then the command line of `sluice_host::cli`.

use clap::Parser;

fn main() {
    let cli = sluice_host::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // warp's own server (the webhook source's) logs a client that hangs up
                // mid-request as an ERROR; a normal disconnect is not an error.
                .unwrap_or_else(|_| "info,rdkafka=warn,warp::server=off".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    // The blocking pool serves short calls (the object store's file operations, metadata
    // requests); long-lived work has its own threads (`sluice_host::threads`). Unbounded, a
    // lake sink writing thousands of small objects grew it to hundreds of threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
        .expect("the async runtime starts unless the OS is out of resources");
    let code = runtime.block_on(sluice_host::cli::main(cli));
    std::process::exit(code);
}

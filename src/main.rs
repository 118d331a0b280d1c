//! The `dropship` binary: parses the command line and hands over to the library.

mod cli;

use clap::Parser;
use cli::{Cli, Command, StackCommand};

fn main() {
    let args = Cli::parse();
    cli::report::set_quiet(args.log.quiet);
    if !matches!(args.command, Command::Serve(_)) {
        // `serve` installs its own once it has read its configuration file.
        cli::logging::init_cli(&args.log);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match args.command {
            Command::Build(a) => cli::build(*a).await,
            Command::Stack(StackCommand::Import(a)) => cli::stacks::import(a).await,
            Command::Rebase(a) => cli::rebase::rebase(a).await,
            Command::Serve(a) => cli::serve(*a, &args.log).await,
            Command::Push(a) => cli::push::push(a).await,
            Command::Login(a) => cli::login::login(a).await,
            Command::Logout => cli::login::logout().await,
            Command::Target(a) => cli::login::target(a).await,
            Command::Stack(StackCommand::List(a)) => cli::stacks::list(&a),
            Command::Stack(StackCommand::Inspect(a)) => cli::stacks::inspect(&a).await,
            Command::Version(a) => Ok(cli::meta::version(&a)),
            Command::Completion(a) => Ok(cli::meta::completion(&a)?),
        }
    });
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            cli::logging::fatal(&e);
            1
        }
    };
    // Blocking work still running (an interrupted build's staging winding down, then its
    // workspace being removed) finishes first, within bounds.
    runtime.shutdown_timeout(std::time::Duration::from_secs(30));
    std::process::exit(code);
}

use std::process::ExitCode;

use clap::Parser;

use btscion::cli::args::{Cli, Command, Mode, TransferArgs};
use btscion::cli::{self, legacy};

fn main() -> ExitCode {
    btscion::storage::pool::fit_to_descriptor_limit();
    let argv: Vec<String> = std::env::args().collect();
    let result = if legacy::is_legacy(&argv) {
        match legacy::parse(&argv) {
            Ok(t) => {
                cli::init_logging(&t.log_level);
                cli::run::transfer(t)
            }
            Err(e) => Err(cli::exit::usage(format!("{e}\nRun with --help for usage."))),
        }
    } else {
        let parsed = Cli::parse_from(cli::args::go_style_bwtest_flags(argv));
        match parsed.command {
            Command::Download(c) => {
                cli::init_logging(&c.log_level);
                cli::run::transfer(TransferArgs::from_cli(Mode::Download, c))
            }
            Command::Seed(c) => {
                cli::init_logging(&c.log_level);
                cli::run::transfer(TransferArgs::from_cli(Mode::Seed, c))
            }
            Command::Daemon(d) => {
                cli::init_logging(&d.log_level);
                cli::run::tool(Command::Daemon(d))
            }
            other => {
                cli::init_logging("INFO");
                cli::run::tool(other)
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code() as u8)
        }
    }
}

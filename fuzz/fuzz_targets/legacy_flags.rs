//! The original client's Go-style flags (`-inPath=x -seed true ...`): any argv must parse or
//! give an error message, never panic. Arguments are separated by NUL bytes in the input.
#![no_main]
use btscion::cli::legacy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args: Vec<String> = std::iter::once("bittorrent-over-scion".to_string())
        .chain(text.split('\0').map(str::to_string))
        .collect();
    let _ = legacy::is_legacy(&args);
    let _ = legacy::parse(&args);
});

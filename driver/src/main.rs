//! The `ferry` binary.

fn main() -> std::process::ExitCode {
    ferry::main_entry()
}

fn main() -> std::process::ExitCode {
    fabric_console::cli::main()
}

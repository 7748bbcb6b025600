fn main() -> std::process::ExitCode {
    flowship::main()
}

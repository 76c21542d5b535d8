fn main() {
    std::process::exit(writ::cli::main());
}

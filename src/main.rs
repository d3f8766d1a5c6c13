fn main() {
    std::process::exit(flowsnap::cli::main());
}

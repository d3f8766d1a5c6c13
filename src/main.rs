fn main() {
    std::process::exit(flowsnap::cli::main());
}

/// See src/alloc.rs: a huge declared Content-Length must not abort the process.
#[global_allocator]
static ALLOCATOR: flowsnap::alloc::Allocator = flowsnap::alloc::Allocator;

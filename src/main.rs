// The sync planner allocates heavily; mimalloc plans a 100k-object fabric about a quarter faster
// than the system allocator (benches/sync.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fabric_console::cli::main()
}

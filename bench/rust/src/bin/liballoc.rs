// SPDX-License-Identifier: BSD-2-Clause
//! The service workload under `#[global_allocator] LibAlloc`.
#[global_allocator]
static GLOBAL: liballoc::LibAlloc = liballoc::LibAlloc;

fn main() {
    std::process::exit(bench_rust_service::main("LibAlloc"));
}

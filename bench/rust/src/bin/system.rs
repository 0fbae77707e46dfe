// SPDX-License-Identifier: BSD-2-Clause
//! The service workload under `std::alloc::System`: the C library's malloc,
//! or the allocator LD_PRELOAD puts in its place.
#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() {
    std::process::exit(bench_rust_service::main("System"));
}

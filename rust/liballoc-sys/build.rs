// SPDX-License-Identifier: BSD-2-Clause
//
// Builds the C library with its own configure and make, out of tree in
// OUT_DIR, and links lib/liballoc.a statically. std only: no registry is
// reachable from the build machines.
//
// Where the C sources are: the repository two directories up when this is
// its rust/liballoc-sys, else c-src/ inside the crate (a packaged crate:
// scripts/rust-package copies them in, with a generated configure). configure is generated into OUT_DIR
// with autoconf (so the source tree is never written to), or taken from the
// sources when autoconf is missing and they carry one.
//
// What reaches configure: the cargo features (see Cargo.toml), the
// LIBALLOC_SYS_WITH_* variables, and --with-prefix=_rla_ unless the crate
// may replace malloc (feature unprefixed_malloc_on_supported_platforms on
// Linux with glibc). LIBALLOC_OVERRIDE=/path/liballoc.a links a prebuilt
// library instead of building one. Every variable is checked before
// anything runs; a bad value stops the build naming the variable.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The prefix of every C symbol in the default (prefixed) build; src/lib.rs
/// uses the same literal.
const PREFIX: &str = "_rla_";

/// The configure default for --with-lg-quantum (configure.ac).
const DEFAULT_LG_QUANTUM: u32 = 4;

/// A build variable that takes an integer, with configure's range.
struct IntVar {
    name: &'static str,
    option: &'static str,
    min: u32,
    max: u32,
}

const INT_VARS: [IntVar; 4] = [
    IntVar { name: "LIBALLOC_SYS_WITH_LG_PAGE", option: "--with-lg-page", min: 12, max: 16 },
    IntVar { name: "LIBALLOC_SYS_WITH_LG_HUGEPAGE", option: "--with-lg-hugepage", min: 16, max: 30 },
    IntVar { name: "LIBALLOC_SYS_WITH_LG_QUANTUM", option: "--with-lg-quantum", min: 3, max: 8 },
    IntVar { name: "LIBALLOC_SYS_WITH_LG_VADDR", option: "--with-lg-vaddr", min: 32, max: 60 },
];

const MALLOC_CONF_VAR: &str = "LIBALLOC_SYS_WITH_MALLOC_CONF";
const OVERRIDE_VAR: &str = "LIBALLOC_OVERRIDE";

/// Stops the build with a message cargo shows as the error.
fn fail(msg: &str) -> ! {
    eprintln!("error: liballoc-sys: {}", msg);
    panic!("liballoc-sys: {}", msg);
}

fn feature(name: &str) -> bool {
    env::var_os(format!("CARGO_FEATURE_{}", name.to_uppercase())).is_some()
}

/// The value of a build variable, None when unset; not UTF-8 is an error.
fn var(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={}", name);
    match env::var(name) {
        Ok(v) => Some(v),
        Err(env::VarError::NotPresent) => None,
        Err(env::VarError::NotUnicode(_)) => fail(&format!("{} is not valid UTF-8", name)),
    }
}

fn int_var(v: &IntVar) -> Option<u32> {
    let s = var(v.name)?;
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u32>() {
        Ok(n) if ok && n >= v.min && n <= v.max => Some(n),
        _ => fail(&format!(
            "{}={:?}: expected an integer in {}..={} (passed to configure as {})",
            v.name, s, v.min, v.max, v.option
        )),
    }
}

/// The options string: printable ASCII in key:value,... form, as configure
/// and the option parser take it.
fn malloc_conf_var() -> Option<String> {
    let s = var(MALLOC_CONF_VAR)?;
    if let Some(c) = s.chars().find(|c| !(' '..='~').contains(c)) {
        fail(&format!("{}={:?}: {:?} is not a printable ASCII character", MALLOC_CONF_VAR, s, c));
    }
    for pair in s.split(',').filter(|p| !p.is_empty()) {
        let colon = pair.find(':');
        if colon.map_or(true, |i| i == 0) {
            fail(&format!("{}={:?}: {:?} is not key:value", MALLOC_CONF_VAR, s, pair));
        }
    }
    Some(s)
}

/// The C sources: the repository when this crate is the one in it
/// (rust/liballoc-sys), so a leftover c-src/ copy is never built from
/// there; otherwise the copy packaged into the crate.
fn source_dir(manifest: &Path) -> PathBuf {
    let repo = manifest.join("..").join("..");
    let in_repo = match (repo.join("rust").join("liballoc-sys").canonicalize(), manifest.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if in_repo && repo.join("configure.ac").is_file() && repo.join("src").is_dir() {
        return repo.canonicalize().unwrap_or(repo);
    }
    let packaged = manifest.join("c-src");
    if packaged.join("configure.ac").is_file() {
        return packaged;
    }
    fail(&format!(
        "no C sources: neither {} nor {} holds configure.ac (run scripts/rust-package before \
         `cargo package`, or set {}=/path/liballoc.a)",
        packaged.display(),
        repo.display(),
        OVERRIDE_VAR
    ))
}

fn run(cmd: &mut Command, what: &str, log: &Path) {
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => fail(&format!("cannot run {}: {}", what, e)),
    };
    let mut text = out.stdout.clone();
    text.extend_from_slice(&out.stderr);
    let _ = fs::write(log, &text);
    if !out.status.success() {
        let s = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = s.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        fail(&format!("{} failed ({}); the end of {}:\n{}", what, out.status, log.display(), tail));
    }
}

fn have_program(name: &str) -> bool {
    Command::new(name).arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// Writes configure into out (from configure.ac with autoconf, or a copy of
/// the one the sources carry); returns its path.
fn generate_configure(src: &Path, out: &Path) -> PathBuf {
    let dest = out.join("configure");
    let ac = src.join("configure.ac");
    let fresh = |p: &Path| -> bool {
        match (fs::metadata(p).and_then(|m| m.modified()), fs::metadata(&ac).and_then(|m| m.modified())) {
            (Ok(a), Ok(b)) => a >= b,
            _ => false,
        }
    };
    if dest.is_file() && fresh(&dest) {
        return dest;
    }
    if have_program("autoconf") {
        // autoconf writes autom4te.cache into the current directory: OUT_DIR.
        let mut cmd = Command::new("autoconf");
        cmd.current_dir(out).arg("--force").arg("-o").arg(&dest).arg(&ac);
        run(&mut cmd, "autoconf", &out.join("autoconf.log"));
        let _ = fs::remove_dir_all(out.join("autom4te.cache"));
        return dest;
    }
    let shipped = src.join("configure");
    if shipped.is_file() && fresh(&shipped) {
        if let Err(e) = fs::copy(&shipped, &dest) {
            fail(&format!("cannot copy {}: {}", shipped.display(), e));
        }
        return dest;
    }
    fail("autoconf not found and the C sources carry no up-to-date configure (apt-get install autoconf)")
}

/// Whether this source tree's configure knows --enable-prof.
fn configure_knows_prof(src: &Path) -> bool {
    let text = fs::read_to_string(src.join("configure.ac")).unwrap_or_default();
    text.contains("AC_ARG_ENABLE([prof]")
}

/// Links a prebuilt library (LIBALLOC_OVERRIDE) instead of building one.
fn link_override(path: &str) {
    let p = Path::new(path);
    let file = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
    if !file.starts_with("lib") || !file.ends_with(".a") || file.len() <= 5 {
        fail(&format!("{}={}: expected the path of a static library named lib<name>.a", OVERRIDE_VAR, path));
    }
    if !p.is_file() {
        fail(&format!("{}={}: no such file", OVERRIDE_VAR, path));
    }
    let dir = p.parent().map(|d| d.to_path_buf()).unwrap_or_else(|| PathBuf::from("."));
    let dir = dir.canonicalize().unwrap_or(dir);
    println!("cargo:rerun-if-changed={}", path);
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static={}", &file[3..file.len() - 2]);
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");

    // Check every variable before doing anything.
    let ints: Vec<(&IntVar, Option<u32>)> = INT_VARS.iter().map(|v| (v, int_var(v))).collect();
    let malloc_conf = malloc_conf_var();
    let override_lib = var(OVERRIDE_VAR).filter(|s| !s.is_empty());
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // Where replacing malloc is supported: src/lib.rs has the same test.
    let unprefixed = feature("unprefixed_malloc_on_supported_platforms")
        && target_os == "linux"
        && target_env == "gnu";

    // What src/lib.rs needs to know about the library it links.
    let lg_quantum = ints
        .iter()
        .find(|(v, _)| v.name == "LIBALLOC_SYS_WITH_LG_QUANTUM")
        .and_then(|(_, n)| *n)
        .unwrap_or(DEFAULT_LG_QUANTUM);
    let config_rs = format!(
        "/// log2 of the quantum the library was configured with: malloc\n\
         /// aligns every block of at least this size to `1 << LG_QUANTUM`.\n\
         pub const LG_QUANTUM: u32 = {};\n",
        lg_quantum
    );
    if let Err(e) = fs::write(out.join("config.rs"), config_rs) {
        fail(&format!("cannot write {}: {}", out.join("config.rs").display(), e));
    }

    if let Some(path) = override_lib {
        link_override(&path);
        return;
    }

    let src = source_dir(&manifest);
    for p in ["src", "include", "configure.ac", "Makefile.in", "configure"] {
        let path = src.join(p);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    if feature("profiling") && !configure_knows_prof(&src) {
        fail(&format!(
            "feature `profiling` needs configure --enable-prof, which the liballoc sources in {} \
             do not have: profiling is not available in this source",
            src.display()
        ));
    }

    let mut args: Vec<String> = Vec::new();
    if !unprefixed {
        args.push(format!("--with-prefix={}", PREFIX));
    }
    if !feature("stats") {
        args.push("--disable-stats".into());
    }
    if feature("debug") {
        args.push("--enable-debug".into());
    }
    if feature("profiling") {
        args.push("--enable-prof".into());
    }
    if feature("background_threads") {
        args.push("--enable-background-thread".into());
    } else if !feature("background_threads_runtime_support") {
        args.push("--disable-background-thread-support".into());
    }
    if feature("disable_initial_exec_tls") {
        args.push("--disable-initial-exec-tls".into());
    }
    for (v, n) in &ints {
        if let Some(n) = n {
            args.push(format!("{}={}", v.option, n));
        }
    }
    if let Some(conf) = &malloc_conf {
        args.push(format!("--with-malloc-conf={}", conf));
    }
    // The unit-test sanitizer probe only slows configure down here.
    args.push("--disable-sanitizers".into());
    let host = env::var("HOST").unwrap_or_default();
    let target = env::var("TARGET").unwrap_or_default();
    if !target.is_empty() && target != host {
        args.push(format!("--host={}", target));
    }

    let configure = generate_configure(&src, &out);
    let build = out.join("build");
    // configure again only when its arguments or configure itself changed;
    // then in an empty directory (objects and dependency files of another
    // configuration or source directory must not survive).
    let args_file = build.join("cargo-config.args");
    // The source directory is part of the configuration (Makefile's srcdir).
    let args_text = format!("{}\n--srcdir={}", args.join("\n"), src.display());
    let configured = build.join("Makefile").is_file()
        && fs::read_to_string(&args_file).map(|a| a == args_text).unwrap_or(false)
        && match (
            fs::metadata(build.join("config.status")).and_then(|m| m.modified()),
            fs::metadata(&configure).and_then(|m| m.modified()),
        ) {
            (Ok(a), Ok(b)) => a >= b,
            _ => false,
        };
    if !configured {
        let _ = fs::remove_dir_all(&build);
        if let Err(e) = fs::create_dir_all(&build) {
            fail(&format!("cannot create {}: {}", build.display(), e));
        }
        let mut cmd = Command::new("sh");
        cmd.current_dir(&build).arg(&configure).arg(format!("--srcdir={}", src.display())).args(&args);
        run(&mut cmd, &format!("configure {}", args.join(" ")), &build.join("cargo-configure.log"));
        let _ = fs::write(&args_file, &args_text);
    }

    let jobs = env::var("NUM_JOBS").unwrap_or_else(|_| "2".into());
    let mut cmd = Command::new(env::var("MAKE").unwrap_or_else(|_| "make".into()));
    cmd.current_dir(&build).arg(format!("-j{}", jobs)).arg("lib/liballoc.a");
    // Our -j, not a jobserver from cargo that make may not be able to use.
    cmd.env_remove("MAKEFLAGS").env_remove("MFLAGS");
    run(&mut cmd, "make lib/liballoc.a", &build.join("cargo-make.log"));

    println!("cargo:rustc-link-search=native={}", build.join("lib").display());
    println!("cargo:rustc-link-lib=static=alloc");
    println!("cargo:rustc-link-lib=pthread");
    // For crates that build C against the same library (DEP_ALLOC_*).
    println!("cargo:root={}", build.display());
    println!("cargo:include={}", src.join("include").display());
    println!("cargo:prefix={}", if unprefixed { "" } else { PREFIX });
}

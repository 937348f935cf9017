//! The runtime's modules form layers: each names only the modules before it in [`ORDER`], so
//! that no two modules depend on each other and each can be read and tested with what is below
//! it. `lib.rs` itself (the public API and `__private`) sits on top.

/// The modules, bottom up: the leaves (errors, keys, codecs and the stored format, per-function
/// and cache counters, backends, the single-flight table, the fault and replay records); the
/// options of a call (`policy`,
/// `outcome`, `failure`); the core of a cache; the engine's steps, which take the core (`call`,
/// `invalidate`, `fill`, `write`, `lend`, `loader`, `aside`); the handle (`cache`); and what the
/// generated code calls (`entry`). A new module goes where what it names is below it.
#[cfg(test)]
const ORDER: &[&str] = &[
    "log",
    "error",
    "duration",
    "key",
    "codec",
    "envelope",
    "server_stats",
    "breaker",
    "stats",
    "function",
    "backend",
    "near",
    "flight",
    "on_cache_error",
    "faults",
    "pending",
    "checks",
    "policy",
    "outcome",
    "failure",
    "core",
    "call",
    "invalidate",
    "fill",
    "write",
    "lend",
    "loader",
    "aside",
    "cache",
    "entry",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::ORDER;

    /// The modules `lib.rs` declares.
    fn declared(lib: &str) -> Vec<String> {
        lib.lines()
            .filter_map(|line| {
                let line = line.trim();
                let rest = line
                    .strip_prefix("pub mod ")
                    .or_else(|| line.strip_prefix("mod "))?;
                // Declarations only: `pub mod __private { .. }` is the top, not a layer.
                Some(rest.strip_suffix(';')?.to_owned())
            })
            .filter(|module| module != "layers")
            .collect()
    }

    /// The `crate::<module>` paths a source names outside comments and its test module.
    fn named(source: &str) -> BTreeSet<String> {
        let code = source
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or(source);
        let mut names = BTreeSet::new();
        for line in code.lines() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                names.insert(name);
            }
        }
        names
    }

    fn sources(root: &Path, module: &str) -> Vec<(String, String)> {
        let file = root.join(format!("{module}.rs"));
        let directory = root.join(module);
        let mut files = Vec::new();
        if file.exists() {
            files.push(file);
        }
        if directory.is_dir() {
            let mut inner: Vec<_> = std::fs::read_dir(&directory)
                .expect("a module directory")
                .map(|entry| entry.expect("an entry").path())
                .collect();
            inner.sort();
            files.extend(inner);
        }
        assert!(!files.is_empty(), "no source for module `{module}`");
        files
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("a readable source");
                (path.display().to_string(), text)
            })
            .collect()
    }

    #[test]
    fn each_module_names_only_the_modules_below_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let lib = std::fs::read_to_string(root.join("lib.rs")).expect("lib.rs");
        let mut modules = declared(&lib);
        modules.sort();
        let mut order: Vec<String> = ORDER.iter().map(|module| (*module).to_owned()).collect();
        order.sort();
        assert_eq!(
            modules, order,
            "each module of lib.rs has its place in ORDER"
        );
        let order = ORDER;
        let mut upward = Vec::new();
        for (rank, module) in order.iter().enumerate() {
            for (path, source) in sources(&root, module) {
                for name in named(&source) {
                    let Some(target) = order.iter().position(|other| **other == name) else {
                        continue; // `crate::Result`, `crate::__private`, macros: not modules
                    };
                    if target > rank {
                        upward.push(format!("{path} names `{name}`, a layer above `{module}`"));
                    }
                }
            }
        }
        assert!(
            upward.is_empty(),
            "layers pointing up:\n{}",
            upward.join("\n")
        );
    }

    #[test]
    fn the_check_sees_a_module_that_names_one_above_it() {
        let source = "use crate::key::Key;\n// crate::cache in a comment\nfn f() { crate::aside::x() }\n#[cfg(test)]\nmod tests { use crate::entry; }\n";
        let names = named(source);
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["aside", "key"],
            "paths in code count; comments and the test module do not"
        );
    }
}

//! Files of the repository an integrator or operator reads: the contract, the README,
//! the Docker files. Checked here so they cannot drift from what they describe.

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every file under `dir` (recursively) whose name ends with `ext`.
fn files(dir: &Path, ext: &str, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let p = e.path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.to_string_lossy().ends_with(ext) {
            out.push(p);
        }
    }
}

#[test]
fn the_contract_is_in_the_repository_and_the_same_as_the_callers_copy() {
    let ours = read("docs/API.md");
    assert!(
        ours.starts_with("# mspbots-mfa — API contract"),
        "docs/API.md"
    );
    // The copy shared with the calling teams sits beside the checkout in this workspace;
    // in a plain clone it does not, and only the repository's copy counts.
    let shared = Path::new(ROOT).join("../shared/API.md");
    if let Ok(theirs) = std::fs::read(&shared) {
        assert!(
            theirs == ours.as_bytes(),
            "docs/API.md differs from {}: copy it verbatim",
            shared.display()
        );
    }
}

#[test]
fn every_reference_to_the_contract_names_its_path_in_the_repository() {
    let mut paths = vec![Path::new(ROOT).join("README.md")];
    files(&Path::new(ROOT).join("src"), ".rs", &mut paths);
    files(&Path::new(ROOT).join("tests"), ".rs", &mut paths);
    let mut bare = vec![];
    let mut found = 0;
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap();
        for (i, line) in text.lines().enumerate() {
            // Split on the path form; any "API.md" left over is a bare reference.
            let rest = line.replace("docs/API.md", "");
            found += line.matches("docs/API.md").count();
            if rest.contains("API.md")
                && !line.contains("\"API.md\"")
                && !line.contains("../shared/API.md")
            {
                bare.push(format!("{}:{}: {line}", p.display(), i + 1));
            }
        }
    }
    assert!(found > 10, "references to docs/API.md: {found}");
    assert!(
        bare.is_empty(),
        "references without docs/:\n{}",
        bare.join("\n")
    );
}

//! Files of the repository an integrator or operator reads: the contract, the README and the
//! guides in `docs/`, the Docker files. Checked here so they cannot drift from what they
//! describe.

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

/// The guides: `docs/*.md` but the contract, which is a verbatim copy.
fn guides() -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md") && !p.ends_with("API.md"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_reference_to_the_contract_names_its_path_in_the_repository() {
    let mut paths = vec![Path::new(ROOT).join("README.md")];
    paths.extend(guides());
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
            if rest.contains("API.md") && !p.ends_with("repo_files.rs") {
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

/// `(number, title)` of every "Flow N" heading in `text` after `marker` ("### " or "## ").
fn flows(text: &str, marker: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix(marker)?.strip_prefix("Flow "))
        .map(|rest| {
            let (n, title) = rest.split_once([':', ' ']).unwrap();
            let title = title.trim_start_matches([' ', '—', ':']).trim();
            (n.to_owned(), title.to_owned())
        })
        .collect()
}

#[test]
fn the_integration_guide_and_the_openapi_document_number_the_flows_alike() {
    let guide = flows(&read("docs/integration.md"), "## ");
    let spec = mspbots_mfa::openapi::document();
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let docs = flows(spec["info"]["description"].as_str().unwrap(), "## ");
    assert_eq!(guide.len(), 3, "{guide:?}");
    assert_eq!(guide, docs);
    // `.ci/walkthrough.sh` runs this guide's blocks, so the guide is what CI exercises.
    assert!(read(".ci/walkthrough.sh").contains("guide=docs/integration.md"));
}

#[test]
fn the_readme_is_a_front_page_with_the_two_commands_and_every_setting() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines: the details belong in docs/"
    );
    for command in ["cargo run --release", "cargo test"] {
        assert!(readme.contains(command), "README.md lacks `{command}`");
    }
    // Every environment variable the service reads is in the configuration table.
    let config = read("src/config/mod.rs");
    let vars: Vec<&str> = config
        .split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(vars.len() > 30, "{vars:?}");
    let missing: Vec<_> = vars
        .iter()
        .filter(|v| !readme.contains(&format!("| `{v}`")) && !readme.contains(&format!("/ `{v}`")))
        .collect();
    assert!(missing.is_empty(), "not in README.md's table: {missing:?}");
}

#[test]
fn every_relative_link_of_the_readme_and_the_guides_names_a_file_that_exists() {
    let mut pages = vec![Path::new(ROOT).join("README.md")];
    pages.extend(guides());
    let mut broken = vec![];
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in text.split("](").skip(1).filter_map(|r| r.split(')').next()) {
            if target.contains("://") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap();
            if !page.parent().unwrap().join(file).exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to nothing:\n{}",
        broken.join("\n")
    );
}

/// The exec-form command of a health check: a JSON array on the line after `key`.
fn exec_form(text: &str, key: &str) -> Vec<String> {
    let line = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(key))
        .find_map(|l| l.find('[').map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no {key} with an exec-form command"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// Runs the health check's arguments through the real binary against a closed port: a
/// command line the binary does not accept exits 2 (clap), a failed check exits 1.
fn check_command_is_accepted(argv: &[String]) {
    assert_eq!(argv[0], "/usr/local/bin/mspbots-mfa", "{argv:?}");
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = std::process::Command::new(crate::e2e::BIN)
        .args(&argv[1..])
        .env("MFA_BIND", free.to_string())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{argv:?}: {err}");
    assert!(err.contains(&free.to_string()), "{err}");
}

#[test]
fn the_docker_files_check_health_without_a_shell_and_send_no_build_output_or_keys() {
    let dockerfile = read("docker/Dockerfile");
    let copied = "COPY --from=build /src/target/release/mspbots-mfa /usr/local/bin/mspbots-mfa";
    assert!(dockerfile.contains(copied));
    let hc = exec_form(&dockerfile, "HEALTHCHECK");
    assert_eq!(hc[1], "healthcheck");
    check_command_is_accepted(&hc);

    // The dependency layer: a release build before the sources are copied in.
    let deps = dockerfile.find("cargo build --release").unwrap();
    assert!(
        deps < dockerfile.find("COPY src").unwrap(),
        "no dependency-cache layer"
    );

    // A numeric USER names a group the image created with that id (or the user by name).
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    if let Some((_, gid)) = user.split_once(':') {
        assert!(
            dockerfile.contains(&format!("groupadd --system --gid {gid} ")),
            "USER {user}: no group with id {gid}"
        );
    }

    let compose = read("docker/compose.yml");
    assert!(!compose.contains("/dev/tcp"), "the image's /bin/sh is dash");
    let mfa = &compose[compose.find("\n  mfa:").unwrap()..];
    // Development keys: the port answers on loopback only.
    let published: Vec<&str> = mfa
        .lines()
        .skip_while(|l| l.trim() != "ports:")
        .skip(1)
        .take_while(|l| l.trim_start().starts_with(['-', '#']))
        .filter(|l| l.trim_start().starts_with('-'))
        .collect();
    assert!(!published.is_empty(), "no published port");
    for p in published {
        assert!(p.contains("\"127.0.0.1:"), "published beyond loopback: {p}");
    }
    let test = exec_form(&mfa[mfa.find("healthcheck:").unwrap()..], "test:");
    assert_eq!(test[0], "CMD", "exec form, no shell: {test:?}");
    check_command_is_accepted(&test[1..]);

    let ignore = read(".dockerignore");
    let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
    for needed in ["target/", ".mfa-dev/", ".git", "node_modules/", ".venv*"] {
        assert!(lines.contains(&needed), ".dockerignore lacks {needed}");
    }
}

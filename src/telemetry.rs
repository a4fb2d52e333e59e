//! Logging: the tracing subscriber (JSON lines in production, text in development) and the
//! filter that keeps the database driver from logging bound parameters. The per-request
//! context (request id, request span, access log) is `http::middleware::request`.

use tracing_subscriber::EnvFilter;

use crate::config::Environment;

/// The database driver's targets: at debug they log every statement with its bound
/// parameters (ciphertexts, nonces, token hashes).
const DRIVER_TARGETS: &[&str] = &["tokio_postgres", "diesel", "diesel_async"];

/// The WebAuthn verifier's targets: at debug they print credential data (§21), so they stay
/// at `warn` whatever `RUST_LOG` says, even when it names them.
const VERIFIER_TARGETS: &[&str] = &["webauthn_rs_core", "webauthn_rs"];

/// The first target of a directive (`tokio_postgres::query=debug` -> `tokio_postgres::query`).
fn target_of(d: &str) -> &str {
    d.split(['=', '[']).next().unwrap_or("").trim()
}

/// Whether a directive's target is `target` or inside it.
fn names(d: &str, target: &str) -> bool {
    let t = target_of(d);
    t == target || t.starts_with(&format!("{target}::"))
}

/// The filter for a `RUST_LOG` value: as given, except that the driver's targets stay at
/// `info` at most unless the value names them itself (`RUST_LOG=debug,tokio_postgres=debug`),
/// and the verifier's at `warn` always.
pub fn filter_directives(rust_log: Option<&str>) -> String {
    let given = rust_log.map(str::trim).filter(|s| !s.is_empty());
    let given = given.unwrap_or("info");
    let mut directives = given
        .split(',')
        .filter(|d| !VERIFIER_TARGETS.iter().any(|t| names(d, t)))
        .collect::<Vec<_>>()
        .join(",");
    for target in DRIVER_TARGETS {
        if !directives.split(',').any(|d| names(d, target)) {
            directives.push_str(&format!(",{target}=info"));
        }
    }
    for target in VERIFIER_TARGETS {
        directives.push_str(&format!(",{target}=warn"));
    }
    directives
}

/// JSON lines in production, human-readable text in development. `RUST_LOG` filters.
pub fn init(env: Environment, rust_log: &str) {
    let filter = EnvFilter::try_new(filter_directives(Some(rust_log)))
        .unwrap_or_else(|_| EnvFilter::new(filter_directives(None)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // try_init: tests and the CLI may call this more than once.
    let _ = match env {
        Environment::Production => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        Environment::Development => builder.compact().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events that reach the log under a `RUST_LOG` value.
    fn logged(rust_log: &str, emit: impl FnOnce()) -> String {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(filter_directives(Some(rust_log))))
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn the_driver_never_logs_bound_parameters_unless_asked_by_name() {
        let emit = || {
            tracing::debug!(target: "tokio_postgres::query", "executing statement s0 with parameters: [\"secret-nonce\"]");
            tracing::debug!(target: "diesel_async::pg", "query with binds secret-bind");
            tracing::debug!(target: "mspbots_mfa::services", "our own debug line");
        };
        let out = logged("debug", emit);
        assert!(out.contains("our own debug line"), "{out}");
        assert!(
            !out.contains("secret-nonce") && !out.contains("secret-bind"),
            "{out}"
        );
        let out = logged("trace", emit);
        assert!(!out.contains("secret-nonce"), "{out}");
        // Named explicitly, the driver logs as asked.
        let out = logged("info,tokio_postgres=debug", emit);
        assert!(out.contains("secret-nonce"), "{out}");
        assert!(!out.contains("our own debug line"), "{out}");
        assert_eq!(
            filter_directives(None),
            "info,tokio_postgres=info,diesel=info,diesel_async=info,webauthn_rs_core=warn,webauthn_rs=warn"
        );
        assert_eq!(
            filter_directives(Some("warn,diesel::pg=debug")),
            "warn,diesel::pg=debug,tokio_postgres=info,diesel_async=info,webauthn_rs_core=warn,webauthn_rs=warn"
        );
    }

    #[test]
    fn the_verifier_logs_warnings_only_even_when_named() {
        let emit = || {
            tracing::debug!(target: "webauthn_rs_core::core", "credential secret-cred-data");
            tracing::info!(target: "webauthn_rs::interface", "state secret-state");
            tracing::warn!(target: "webauthn_rs_core::core", "a warning");
        };
        for rust_log in [
            "trace",
            "debug,webauthn_rs_core=trace",
            "webauthn_rs=debug,webauthn_rs_core::core=debug",
        ] {
            let out = logged(rust_log, emit);
            assert!(!out.contains("secret-"), "{rust_log}: {out}");
            assert!(out.contains("a warning"), "{rust_log}: {out}");
        }
    }
}

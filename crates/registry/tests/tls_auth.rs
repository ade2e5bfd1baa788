//! TLS and basic auth with a real client (curl): handshakes by version, client
//! certificates, 401/200 by credentials, and bcrypt verified once per credential.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use kiln_registry::{Exporter, WebFlags, build_info};
use kiln_scraper::{Auth, ClientTls, ScrapeClient};
use support::{ExampleExporter, Pki, curl, path_str};

/// `secret` hashed with bcrypt cost 10 (what htpasswd -B writes by default).
fn hash(password: &str) -> String {
    bcrypt::hash(password, 10).unwrap()
}

fn https_exporter(pki: &Pki, web_config: &str) -> ExampleExporter {
    let file = pki.web_config("web.yml", web_config);
    let flag = format!("--web.config.file={}", path_str(&file));
    ExampleExporter::start_with_scheme(&["--example.series=5", &flag], "https")
}

fn https(exporter: &ExampleExporter, path: &str) -> String {
    format!("https://localhost:{}{path}", exporter.port)
}

#[test]
fn basic_auth_over_tls_with_curl() {
    let pki = Pki::generate();
    let exporter = https_exporter(
        &pki,
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  alice: {}\n",
            hash("secret")
        ),
    );
    let ca = pki.path("ca.crt");
    let ca = path_str(&ca);
    let url = https(&exporter, "/metrics");
    let resolve = format!("localhost:{}:127.0.0.1", exporter.port);
    let base = ["--cacert", ca, "--resolve", &resolve];

    let (status, _, _) = curl(&[&base[..], &[url.as_str()]].concat());
    assert_eq!(status, 401, "no credentials");
    let (status, _, _) = curl(&[&base[..], &["-u", "alice:wrong", url.as_str()]].concat());
    assert_eq!(status, 401, "wrong password");
    let (status, _, _) = curl(&[&base[..], &["-u", "bob:secret", url.as_str()]].concat());
    assert_eq!(status, 401, "unknown user");
    let (status, body, _) = curl(&[&base[..], &["-u", "alice:secret", url.as_str()]].concat());
    assert_eq!(status, 200, "right credentials");
    assert!(body.contains("example_series{series=\"4\"} 4"));

    for (min, max) in [("--tlsv1.2", "1.2"), ("--tlsv1.3", "1.3")] {
        let (status, _, code) = curl(
            &[
                &base[..],
                &[min, "--tls-max", max, "-u", "alice:secret", url.as_str()],
            ]
            .concat(),
        );
        assert_eq!((status, code), (200, 0), "TLS {max} handshake");
    }
    // Plain HTTP to a TLS port is not served.
    let (status, _, _) = curl(&[&format!("http://127.0.0.1:{}/metrics", exporter.port)]);
    assert_ne!(status, 200);
}

#[test]
fn min_version_tls13_refuses_tls12_clients() {
    let pki = Pki::generate();
    let exporter = https_exporter(
        &pki,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n",
    );
    let ca = pki.path("ca.crt");
    let resolve = format!("localhost:{}:127.0.0.1", exporter.port);
    let url = https(&exporter, "/metrics");
    let args = ["--cacert", path_str(&ca), "--resolve", &resolve];
    let (_, _, code) =
        curl(&[&args[..], &["--tlsv1.2", "--tls-max", "1.2", url.as_str()]].concat());
    assert_ne!(code, 0, "a TLS 1.2-only client must fail the handshake");
    let (status, _, _) = curl(&[&args[..], &[url.as_str()]].concat());
    assert_eq!(status, 200);
}

#[test]
fn client_certificates_are_required_and_verified() {
    let pki = Pki::generate();
    let exporter = https_exporter(
        &pki,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    );
    let ca = pki.path("ca.crt");
    let (cert, key) = (pki.path("client.crt"), pki.path("client.key"));
    let resolve = format!("localhost:{}:127.0.0.1", exporter.port);
    let url = https(&exporter, "/metrics");
    let base = ["--cacert", path_str(&ca), "--resolve", &resolve];
    let (status, _, _) = curl(&[&base[..], &[url.as_str()]].concat());
    assert_ne!(status, 200, "no client certificate");
    let (status, _, _) = curl(
        &[
            &base[..],
            &[
                "--cert",
                path_str(&cert),
                "--key",
                path_str(&key),
                url.as_str(),
            ],
        ]
        .concat(),
    );
    assert_eq!(status, 200, "verified client certificate");
}

#[test]
fn security_headers_from_the_web_config_are_sent() {
    let pki = Pki::generate();
    let file = pki.web_config(
        "web.yml",
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n",
    );
    let flag = format!("--web.config.file={}", path_str(&file));
    let exporter = ExampleExporter::start(&["--example.series=1", &flag]);
    let (status, head, _) = curl(&["-D", "-", "-o", "/dev/null", &exporter.url("/metrics")]);
    assert_eq!(status, 200);
    let head = head.to_ascii_lowercase();
    assert!(head.contains("x-frame-options: deny"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
}

/// In-process, so the exporter's own count of bcrypt runs can be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcrypt_runs_once_per_credential_not_per_request() {
    let pki = Pki::generate();
    let file = pki.web_config(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  alice: {}\n",
            hash("secret")
        ),
    );
    let flags = WebFlags::from_args([
        "--web.listen-address=127.0.0.1:0".to_owned(),
        format!("--web.config.file={}", file.display()),
    ])
    .unwrap();
    let running = Exporter::new(build_info!("auth-test"), "auth", flags)
        .bind()
        .await
        .unwrap();
    let port = running.local_addrs()[0].port();
    let tls = ClientTls {
        ca_file: Some(pki.path("ca.crt")),
        ..ClientTls::default()
    };
    let client = ScrapeClient::with_tls(&tls)
        .unwrap()
        .timeout(Duration::from_secs(10))
        .auth(Auth::Basic {
            username: "alice".into(),
            password: "secret".into(),
        });
    let url = format!("https://localhost:{port}/metrics");
    for _ in 0..50 {
        client.scrape(&url).await.unwrap();
    }
    let auth = running.web_config().auth.clone().unwrap();
    assert_eq!(auth.bcrypt_runs(), 1, "50 scrapes, one bcrypt verification");
    running.shutdown().await;
}

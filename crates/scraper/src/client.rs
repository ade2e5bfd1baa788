//! An HTTP(S) client that scrapes an exporter the way Prometheus does: `Accept` and
//! `X-Prometheus-Scrape-Timeout-Seconds` headers, gzip, basic auth, TLS, a hard timeout
//! and a cap on the body size. [`ScrapeClient::fetch`] does the same for other JSON or text
//! endpoints (a Jolokia agent, Hadoop's `/jmx`), with a body for POST.

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::model::{Exposition, Format};
use crate::parse::{ParseError, Parsed, parse_with};

/// What Prometheus asks for, text first since that is what the exporters serve.
const ACCEPT: &str =
    "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1";

/// Credentials sent with every scrape.
#[derive(Debug, Clone)]
pub enum Auth {
    /// HTTP basic auth.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

/// TLS settings for HTTPS targets, as in Prometheus's `tls_config`.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// CA bundle to verify the server with; the system roots when absent.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate. For tests and labs only.
    pub insecure_skip_verify: bool,
}

/// A scrape that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The URL is malformed.
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// As given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// TLS settings could not be loaded.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// Connecting or reading failed.
    #[error("request failed: {0}")]
    Request(String),
    /// No answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The target answered with an error status.
    #[error("server returned HTTP status {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The first part of the body.
        body: String,
    },
    /// The body is larger than the limit.
    #[error("body exceeds {0} bytes")]
    TooLarge(usize),
    /// The body is not valid gzip or UTF-8.
    #[error("undecodable body: {0}")]
    Body(String),
    /// The request's [`Fetch::admit`] refused part of the body.
    #[error("the answer does not fit in the memory left for answers")]
    Refused,
}

/// One HTTP request for [`ScrapeClient::fetch`].
#[derive(Debug, Clone)]
pub struct Fetch<'a> {
    /// The URL, `http` or `https`.
    pub url: &'a str,
    /// The `Accept` header.
    pub accept: &'a str,
    /// For a POST: the content type and the body. `None` sends a GET.
    pub body: Option<(&'a str, Bytes)>,
    /// Overrides the client's timeout for this request.
    pub timeout: Option<Duration>,
    /// Asked before each piece of the body is kept (and for the decompressed body).
    pub admit: Option<Admit<'a>>,
}

/// Asked with the size of each piece of an answer's body before it is kept; answering
/// `false` ends the request with [`ScrapeError::Refused`]. A caller that shares a memory
/// budget between requests reserves the bytes here, as they arrive.
#[derive(Clone, Copy)]
pub struct Admit<'a>(pub &'a (dyn Fn(usize) -> bool + Send + Sync));

impl std::fmt::Debug for Admit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admit")
    }
}

impl<'a> Fetch<'a> {
    /// A GET of `url` that accepts `accept`.
    pub fn get(url: &'a str, accept: &'a str) -> Self {
        Self {
            url,
            accept,
            body: None,
            timeout: None,
            admit: None,
        }
    }

    /// A POST of `body` (of `content_type`) to `url`.
    pub fn post(url: &'a str, accept: &'a str, content_type: &'a str, body: Bytes) -> Self {
        Self {
            url,
            accept,
            body: Some((content_type, body)),
            timeout: None,
            admit: None,
        }
    }

    /// Gives this request its own timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Asks `admit` before keeping each piece of the body.
    pub fn admit(mut self, admit: &'a (dyn Fn(usize) -> bool + Send + Sync)) -> Self {
        self.admit = Some(Admit(admit));
        self
    }
}

/// A finished scrape.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The `Content-Type` the target sent.
    pub content_type: String,
    /// The decompressed body.
    pub body: String,
    /// Whether it arrived gzip-compressed.
    pub gzipped: bool,
    /// Bytes on the wire.
    pub wire_bytes: usize,
    /// Time from request to the end of the body.
    pub duration: Duration,
}

impl Scrape {
    /// The exposition format, from the content type.
    pub fn format(&self) -> Format {
        Format::from_content_type(&self.content_type)
    }

    /// Parses the body strictly.
    pub fn parse(&self) -> Result<Exposition<'_>, ParseError> {
        self.parse_lenient().into_result()
    }

    /// Parses the body, keeping what parsed alongside any violations.
    pub fn parse_lenient(&self) -> Parsed<'_> {
        parse_with(&self.body, self.format())
    }
}

/// Scrapes targets over HTTP and HTTPS. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct ScrapeClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    auth: Option<Auth>,
    max_body_bytes: usize,
}

impl ScrapeClient {
    /// A client with the system's root certificates and a 10 s timeout.
    pub fn new() -> Result<Self, ScrapeError> {
        Self::with_tls(&ClientTls::default())
    }

    /// A client with the given TLS settings.
    pub fn with_tls(tls: &ClientTls) -> Result<Self, ScrapeError> {
        let config = client_config(tls)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: Duration::from_secs(10),
            auth: None,
            max_body_bytes: 64 << 20,
        })
    }

    /// Sets the whole-scrape timeout (also sent as `X-Prometheus-Scrape-Timeout-Seconds`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends these credentials with every scrape.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Refuses bodies larger than this (after decompression). Default 64 MiB.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Scrapes `url` as Prometheus would.
    pub async fn scrape(&self, url: &str) -> Result<Scrape, ScrapeError> {
        self.fetch(Fetch::get(url, ACCEPT)).await
    }

    /// Sends one request and reads the whole answer, within the request's timeout (or the
    /// client's).
    pub async fn fetch(&self, request: Fetch<'_>) -> Result<Scrape, ScrapeError> {
        let started = Instant::now();
        let timeout = request.timeout.unwrap_or(self.timeout);
        match tokio::time::timeout(timeout, self.send(request, timeout)).await {
            Ok(Ok(mut scrape)) => {
                scrape.duration = started.elapsed();
                Ok(scrape)
            }
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ScrapeError::Timeout(timeout)),
        }
    }

    async fn send(&self, fetch: Fetch<'_>, timeout: Duration) -> Result<Scrape, ScrapeError> {
        let url = fetch.url;
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| ScrapeError::Url {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(ScrapeError::Url {
                url: url.to_owned(),
                reason: "the scheme must be http or https".into(),
            });
        }
        let method = match fetch.body {
            Some(_) => http::Method::POST,
            None => http::Method::GET,
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::ACCEPT, fetch.accept)
            .header(http::header::ACCEPT_ENCODING, "gzip")
            .header(
                http::header::USER_AGENT,
                concat!("kiln-scraper/", env!("CARGO_PKG_VERSION")),
            )
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", timeout.as_secs_f64()),
            );
        match &self.auth {
            Some(Auth::Basic { username, password }) => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                request = request.header(http::header::AUTHORIZATION, format!("Basic {token}"));
            }
            Some(Auth::Bearer(token)) => {
                request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
            }
            None => {}
        }
        let body = match fetch.body {
            Some((content_type, body)) => {
                request = request.header(http::header::CONTENT_TYPE, content_type);
                body
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|e| ScrapeError::Request(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| ScrapeError::Request(error_chain(&e)))?;
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let content_type = header(http::header::CONTENT_TYPE);
        let gzipped = header(http::header::CONTENT_ENCODING).eq_ignore_ascii_case("gzip");
        let raw: Vec<u8> = match fetch.admit {
            None => Limited::new(response.into_body(), self.max_body_bytes)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        ScrapeError::TooLarge(self.max_body_bytes)
                    } else {
                        ScrapeError::Request(e.to_string())
                    }
                })?
                .to_bytes()
                // Takes over the buffer without a copy when the body came in one piece.
                .into(),
            Some(admit) => self.read_admitted(response.into_body(), admit).await?,
        };
        let wire_bytes = raw.len();
        let bytes = if gzipped {
            let mut out = Vec::with_capacity(raw.len() * 4);
            flate2::read::GzDecoder::new(&raw[..])
                .take(self.max_body_bytes as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ScrapeError::Body(format!("gzip: {e}")))?;
            if out.len() > self.max_body_bytes {
                return Err(ScrapeError::TooLarge(self.max_body_bytes));
            }
            if let Some(admit) = fetch.admit
                && !(admit.0)(out.len())
            {
                return Err(ScrapeError::Refused);
            }
            out
        } else {
            raw
        };
        let body = String::from_utf8(bytes).map_err(|e| ScrapeError::Body(e.to_string()))?;
        if !status.is_success() {
            let mut body = body;
            body.truncate(body.floor_char_boundary(256));
            return Err(ScrapeError::Status {
                status: status.as_u16(),
                body: body.trim_end().to_owned(),
            });
        }
        Ok(Scrape {
            content_type,
            body,
            gzipped,
            wire_bytes,
            duration: Duration::ZERO,
        })
    }
}

impl ScrapeClient {
    /// Reads a body piece by piece, asking `admit` before keeping each.
    async fn read_admitted(
        &self,
        mut body: hyper::body::Incoming,
        admit: Admit<'_>,
    ) -> Result<Vec<u8>, ScrapeError> {
        // Kept as the vector it is read into: a large answer is never copied whole.
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ScrapeError::Request(error_chain(&e)))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if out.len() + data.len() > self.max_body_bytes {
                return Err(ScrapeError::TooLarge(self.max_body_bytes));
            }
            if !(admit.0)(data.len()) {
                return Err(ScrapeError::Refused);
            }
            out.extend_from_slice(&data);
        }
        Ok(out)
    }
}

/// hyper's errors hide the cause (connection refused, certificate unknown) in `source()`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn client_config(tls: &ClientTls) -> Result<rustls::ClientConfig, ScrapeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ScrapeError::Tls(e.to_string()))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(insecure::AnyServer(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| ScrapeError::Tls(format!("{}: {e}", path.display())))?;
                roots.add_parsable_certificates(certs);
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        builder.with_root_certificates(roots)
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| ScrapeError::Tls(format!("{}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| ScrapeError::Tls(format!("{}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ScrapeError::Tls(e.to_string()))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(ScrapeError::Tls(
            "cert_file and key_file must be given together".into(),
        )),
    }
}

mod insecure {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, Error, SignatureScheme};

    /// Trusts any server certificate; the handshake signature is still checked.
    #[derive(Debug)]
    pub(super) struct AnyServer(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyServer {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

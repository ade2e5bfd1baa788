//! Builds a rustls server configuration from `tls_server_config`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::{Error as PemError, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, Error as TlsError, RootCertStore, ServerConfig,
    SignatureScheme, SupportedProtocolVersion,
};

use super::{ClientAuthType, TlsServerConfig, TlsVersion};

/// What went wrong, and under which key of `tls_server_config`.
#[derive(Debug)]
pub(super) struct TlsConfigError {
    pub(super) key: &'static str,
    pub(super) message: String,
}

fn fail(key: &'static str, message: impl Into<String>) -> TlsConfigError {
    TlsConfigError {
        key,
        message: message.into(),
    }
}

/// A built configuration and the files it was read from (watched for rotation).
pub(super) struct BuiltTls {
    pub(super) config: ServerConfig,
    pub(super) files: Vec<PathBuf>,
}

pub(super) fn build(
    settings: &TlsServerConfig,
    base: &Path,
    http2: bool,
) -> Result<BuiltTls, TlsConfigError> {
    let mut files = Vec::new();
    let mut resolve = |p: &PathBuf| {
        let path = base.join(p);
        files.push(path.clone());
        path
    };

    let certs: Vec<CertificateDer<'static>> = match (&settings.cert, &settings.cert_file) {
        (Some(_), Some(_)) => return Err(fail("cert", "set cert or cert_file, not both")),
        (Some(pem), None) => CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| fail("cert", pem_problem(&e)))?,
        (None, Some(path)) => {
            let path = resolve(path);
            let pem = read_pem_file(&path, "cert_file")?;
            CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    fail(
                        "cert_file",
                        format!("{}: {}", path.display(), pem_problem(&e)),
                    )
                })?
        }
        (None, None) => return Err(fail("cert_file", "missing cert_file")),
    };
    if certs.is_empty() {
        return Err(fail("cert_file", "no certificate found in the PEM data"));
    }
    let key = match (&settings.key, &settings.key_file) {
        (Some(_), Some(_)) => return Err(fail("key", "set key or key_file, not both")),
        (Some(pem), None) => PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| fail("key", key_problem(&e)))?,
        (None, Some(path)) => {
            let path = resolve(path);
            let pem = read_pem_file(&path, "key_file")?;
            PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                fail(
                    "key_file",
                    format!("{}: {}", path.display(), key_problem(&e)),
                )
            })?
        }
        (None, None) => return Err(fail("key_file", "missing key_file")),
    };

    let versions = protocol_versions(settings.min_version, settings.max_version)?;
    let provider = Arc::new(provider(settings)?);

    let client_roots = match (&settings.client_ca, &settings.client_ca_file) {
        (Some(pem), _) => Some(roots(
            CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>(),
            "client_ca",
        )?),
        (None, Some(path)) => {
            let path = resolve(path);
            let pem = read_pem_file(&path, "client_ca_file")?;
            Some(roots(
                CertificateDer::pem_slice_iter(&pem).collect(),
                "client_ca_file",
            )?)
        }
        (None, None) => None,
    };
    let verifier = client_verifier(settings, client_roots, &provider)?;

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| fail("min_version", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| fail("key_file", format!("certificate and key do not match: {e}")))?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(BuiltTls { config, files })
}

fn protocol_versions(
    min: TlsVersion,
    max: TlsVersion,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsConfigError> {
    if max < TlsVersion::TLS12 {
        return Err(fail(
            "max_version",
            "TLS 1.0 and 1.1 are not supported; the lowest maximum is TLS12",
        ));
    }
    if min > max {
        return Err(fail("min_version", "min_version is above max_version"));
    }
    if min < TlsVersion::TLS12 {
        tracing::warn!(
            min_version = ?min,
            "TLS 1.0 and 1.1 are not offered; TLS 1.2 is the lowest version served."
        );
    }
    let mut versions = Vec::new();
    if max == TlsVersion::TLS13 {
        versions.push(&rustls::version::TLS13);
    }
    if min <= TlsVersion::TLS12 {
        versions.push(&rustls::version::TLS12);
    }
    Ok(versions)
}

/// The ring provider narrowed to the configured cipher suites and curves.
fn provider(settings: &TlsServerConfig) -> Result<CryptoProvider, TlsConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        let mut chosen = Vec::new();
        for name in &settings.cipher_suites {
            let suite = provider
                .cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS12)
                .find(|s| go_suite_name_matches(name, &format!("{:?}", s.suite())))
                .ok_or_else(|| {
                    let supported: Vec<_> = provider
                        .cipher_suites
                        .iter()
                        .filter(|s| s.version() == &rustls::version::TLS12)
                        .map(|s| format!("{:?}", s.suite()))
                        .collect();
                    fail(
                        "cipher_suites",
                        format!(
                            "unsupported cipher suite {name:?}; supported are {}",
                            supported.join(", ")
                        ),
                    )
                })?;
            chosen.push(*suite);
        }
        // As in Go, the list governs TLS 1.2 only; TLS 1.3 suites are always on.
        chosen.extend(
            provider
                .cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13),
        );
        provider.cipher_suites = chosen;
    }
    if !settings.curve_preferences.is_empty() {
        let mut groups = Vec::new();
        for name in &settings.curve_preferences {
            let wanted = match name.as_str() {
                "X25519" => "X25519",
                "CurveP256" => "secp256r1",
                "CurveP384" => "secp384r1",
                other => {
                    return Err(fail(
                        "curve_preferences",
                        format!(
                            "unsupported curve {other:?}; supported are X25519, CurveP256, CurveP384"
                        ),
                    ));
                }
            };
            if let Some(group) = provider
                .kx_groups
                .iter()
                .find(|g| format!("{:?}", g.name()) == wanted)
            {
                groups.push(*group);
            }
        }
        provider.kx_groups = groups;
    }
    Ok(provider)
}

/// Largest certificate, key or CA bundle file read (a system-wide CA bundle is a few
/// hundred kilobytes).
pub(crate) const PEM_FILE_LIMIT: u64 = 4 << 20;

fn read_pem_file(path: &Path, key: &'static str) -> Result<Vec<u8>, TlsConfigError> {
    crate::config::read_capped(path, PEM_FILE_LIMIT)
        .map_err(|e| fail(key, format!("{}: {e}", path.display())))
}

/// A PEM parse error in words. The parser's own messages show the offending line as a
/// list of byte values; this quotes it as text instead.
fn pem_problem(error: &PemError) -> String {
    let quoted = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end();
        match text.char_indices().nth(80) {
            Some((cut, _)) => format!("{:?}...", &text[..cut]),
            None => format!("{text:?}"),
        }
    };
    match error {
        PemError::MissingSectionEnd { end_marker } => {
            let line = [b"-----END ", end_marker.as_slice(), b"-----"].concat();
            format!("invalid PEM: the {} line is missing", quoted(&line))
        }
        PemError::IllegalSectionStart { line } => {
            format!("invalid PEM: malformed BEGIN line {}", quoted(line))
        }
        PemError::Base64Decode(reason) => format!("invalid PEM: bad base64 ({reason})"),
        PemError::NoItemsFound => "no PEM section of the expected kind found".to_owned(),
        other => format!("invalid PEM: {other}"),
    }
}

fn key_problem(error: &PemError) -> String {
    match error {
        PemError::NoItemsFound => "no PEM private key found".to_owned(),
        other => pem_problem(other),
    }
}

/// Go spells some suites without the `_SHA256` that IANA (and rustls) add for ChaCha20.
fn go_suite_name_matches(go_name: &str, iana_name: &str) -> bool {
    go_name == iana_name || format!("{go_name}_SHA256") == iana_name
}

fn roots(
    certs: Result<Vec<CertificateDer<'static>>, PemError>,
    key: &'static str,
) -> Result<RootCertStore, TlsConfigError> {
    let certs =
        certs.map_err(|e| fail(key, format!("cannot read client CA: {}", pem_problem(&e))))?;
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(fail(key, "no usable CA certificate found"));
    }
    Ok(store)
}

fn client_verifier(
    settings: &TlsServerConfig,
    roots: Option<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsConfigError> {
    use ClientAuthType::*;
    let verifier: Arc<dyn ClientCertVerifier> = match (settings.client_auth_type, roots) {
        (NoClientCert, Some(_)) => {
            return Err(fail(
                "client_auth_type",
                "a client CA is configured but client_auth_type is NoClientCert",
            ));
        }
        (NoClientCert, None) => WebPkiClientVerifier::no_client_auth(),
        (RequestClientCert | RequireAnyClientCert, _) => Arc::new(AnyClientCert {
            mandatory: settings.client_auth_type == RequireAnyClientCert,
            algorithms: provider.signature_verification_algorithms,
        }),
        (VerifyClientCertIfGiven | RequireAndVerifyClientCert, None) => {
            return Err(fail(
                "client_ca_file",
                "client_auth_type verifies client certificates but no client_ca_file is set",
            ));
        }
        (kind, Some(roots)) => {
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
            let builder = if kind == VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| fail("client_ca_file", e.to_string()))?
        }
    };
    if settings.client_allowed_sans.is_empty() {
        return Ok(verifier);
    }
    if !matches!(
        settings.client_auth_type,
        VerifyClientCertIfGiven | RequireAndVerifyClientCert
    ) {
        return Err(fail(
            "client_allowed_sans",
            "client_allowed_sans needs a verifying client_auth_type",
        ));
    }
    let allowed = settings
        .client_allowed_sans
        .iter()
        .map(|san| {
            ServerName::try_from(san.clone()).map_err(|_| {
                fail(
                    "client_allowed_sans",
                    format!("{san:?} is not a DNS name or IP"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Arc::new(AllowedSans {
        inner: verifier,
        allowed,
    }))
}

/// Asks for (or requires) a client certificate without checking who issued it, as Go's
/// `RequestClientCert` and `RequireAnyClientCert` do. The handshake signature is still checked.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Verifies as `inner` does, then requires one of the allowed SANs.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<ServerName<'static>>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| TlsError::General(format!("bad client certificate: {e}")))?;
        if self
            .allowed
            .iter()
            .any(|name| cert.verify_is_valid_for_subject_name(name).is_ok())
        {
            Ok(verified)
        } else {
            Err(TlsError::General(
                "client certificate has none of the allowed SANs".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

//! Certificates made for a test with rcgen: a CA, a server certificate for 127.0.0.1 and
//! localhost, and client certificates, written as PEM files in a temporary directory.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};

use super::TempDir;

/// A CA and the files of the certificates it signed.
pub struct Pki {
    pub dir: TempDir,
    ca: Certificate,
    ca_key: KeyPair,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Pki {
    /// A CA and a server certificate for 127.0.0.1 and localhost.
    pub fn new() -> Pki {
        let dir = TempDir::new("pki");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "shardcast test CA");
        let ca_key = KeyPair::generate().expect("ca key");
        let ca = ca_params.self_signed(&ca_key).expect("ca cert");
        let ca_file = dir.0.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write ca");
        let pki = Pki {
            ca_file,
            cert_file: dir.0.join("server.pem"),
            key_file: dir.0.join("server-key.pem"),
            dir,
            ca,
            ca_key,
        };
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        server
            .distinguished_name
            .push(DnType::CommonName, "shardcast test server");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (cert, key) = pki.sign(server);
        std::fs::write(&pki.cert_file, cert).expect("write cert");
        std::fs::write(&pki.key_file, key).expect("write key");
        pki
    }

    /// A client certificate with common name `cn` and email `email`: its PEM files.
    pub fn client(&self, cn: &str, email: &str) -> (PathBuf, PathBuf) {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("client params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = vec![SanType::Rfc822Name(email.try_into().expect("email"))];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let (cert, key) = self.sign(p);
        let (cf, kf) = (
            self.dir.0.join(format!("{cn}.pem")),
            self.dir.0.join(format!("{cn}-key.pem")),
        );
        std::fs::write(&cf, cert).expect("write client cert");
        std::fs::write(&kf, key).expect("write client key");
        (cf, kf)
    }

    fn sign(&self, params: CertificateParams) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    /// The `[tls]` section for these files, plus `extra` lines.
    pub fn toml(&self, extra: &str) -> String {
        format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nca_file = \"{}\"\n{extra}",
            self.cert_file.display(),
            self.key_file.display(),
            self.ca_file.display()
        )
    }
}

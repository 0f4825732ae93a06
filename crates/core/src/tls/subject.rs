//! A client certificate's subject and issuer as RFC 4514 strings (`CN=alice,O=Example,C=FR`),
//! the form nginx's `$ssl_client_s_dn` and Apache's `SSL_CLIENT_S_DN` use: the most specific
//! name first, `,` between names, `+` inside a multi-valued one, special characters escaped.
//!
//! The certificate has passed the handshake's verification against `--ca-certs` before it gets
//! here; x509-parser reads it.

use std::fmt::Write;

use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

/// A certificate's subject and issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub subject: String,
    pub issuer: String,
}

/// The names of a DER certificate; None if it does not parse.
pub fn names(der: &[u8]) -> Option<Names> {
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    Some(Names {
        subject: rfc4514(certificate.subject()),
        issuer: rfc4514(certificate.issuer()),
    })
}

/// RFC 4514 §2: the RDNs in reverse order of the encoding.
fn rfc4514(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attribute) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = attribute.attr_type().to_id_string();
            match short_name(&oid) {
                Some(short) => out.push_str(short),
                None => out.push_str(&oid),
            }
            out.push('=');
            match attribute.as_str() {
                Ok(text) => escape_value(&mut out, text),
                // RFC 4514 §2.4: a value that is not a string, as '#' and its bytes in hex.
                Err(_) => {
                    out.push('#');
                    for byte in attribute.as_slice() {
                        let _ = write!(out, "{byte:02x}");
                    }
                }
            }
        }
    }
    out
}

/// RFC 4514 §3's short names, and OpenSSL's for e-mail addresses.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// RFC 4514 §2.4: a backslash before `"+,;<>\`, a leading space or `#`, a trailing space;
/// control characters as `\XX`.
fn escape_value(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            c if c.is_control() => {
                let mut bytes = [0; 4];
                for byte in c.encode_utf8(&mut bytes).bytes() {
                    let _ = write!(out, "\\{byte:02X}");
                }
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    fn certificate(names: &[(DnType, &str)]) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in names {
            params.distinguished_name.push(kind.clone(), *value);
        }
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_most_specific_name_comes_first() {
        let der = certificate(&[
            (DnType::CountryName, "FR"),
            (DnType::OrganizationName, "Example"),
            (DnType::CommonName, "alice"),
        ]);
        let names = names(&der).unwrap();
        assert_eq!(names.subject, "CN=alice,O=Example,C=FR");
        // Self-signed: the issuer is the subject.
        assert_eq!(names.issuer, names.subject);
    }

    #[test]
    fn special_characters_are_escaped() {
        let der = certificate(&[(DnType::CommonName, " Smith, J. <j+s>#")]);
        assert_eq!(names(&der).unwrap().subject, r"CN=\ Smith\, J. \<j\+s\>#");
        let der = certificate(&[(DnType::CommonName, "#1 ")]);
        assert_eq!(names(&der).unwrap().subject, r"CN=\#1\ ");
    }

    #[test]
    fn garbage_is_no_certificate() {
        assert_eq!(names(b"not a certificate"), None);
        assert_eq!(names(&[]), None);
    }
}

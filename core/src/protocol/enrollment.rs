use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{ProtocolError, limits};
use crate::identity::{DeviceId, PublicKey};
use crate::record::Sha256Digest;

/// Text prefix of an enrollment code (version 1).
pub const ENROLLMENT_CODE_PREFIX: &str = "OBS1:";

/// What a phone needs to trust its coordinator, handed over out of band (a
/// QR code shown at training): where the server is, the fingerprint of its
/// TLS certificate, the key that signs its receipts, and a one-time token.
///
/// ```
/// use observer_core::protocol::EnrollmentCode;
/// let text = "OBS1:not-a-code";
/// assert!(EnrollmentCode::parse(text).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentCode {
    /// `https://host:port` of the coordinating server.
    pub url: String,
    /// SHA-256 of the server's TLS certificate (DER): the only certificate
    /// the phone will accept.
    pub tls_sha256: Sha256Digest,
    /// The coordinator's Ed25519 key (base64url) that signs receipts.
    #[serde(with = "public_key_text")]
    pub coordinator: PublicKey,
    /// The organisation's id.
    pub org: String,
    /// The one-time enrollment token.
    pub token: String,
    /// The coordinator's SMS gateway number, when one was set as the code
    /// was issued: a phone knows where to text its reports from the start.
    /// (Absent otherwise; a phone of a version before SMS reports refuses
    /// a code that carries it.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<String>,
}

pub(crate) mod public_key_text {
    use super::PublicKey;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(k: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&k.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl EnrollmentCode {
    /// The code as text (what the QR code holds).
    pub fn to_text(&self) -> String {
        let json = serde_json::to_vec(self).expect("serialises");
        format!("{ENROLLMENT_CODE_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Parses and validates a code typed, scanned or pasted by a person:
    /// bounded in size, HTTPS only, token of sane length.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let bad = |detail: &str| ProtocolError::Malformed {
            what: "enrollment code",
            detail: detail.into(),
        };
        let text = text.trim();
        if text.len() > limits::MAX_ENROLLMENT_CODE {
            return Err(ProtocolError::TooLarge {
                what: "enrollment code",
                bytes: text.len(),
                limit: limits::MAX_ENROLLMENT_CODE,
            });
        }
        let b64 = text
            .strip_prefix(ENROLLMENT_CODE_PREFIX)
            .ok_or_else(|| bad("it does not start with OBS1:"))?;
        let json = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| bad("it is not base64url"))?;
        let code: Self = serde_json::from_slice(&json).map_err(|e| bad(&e.to_string()))?;
        if !code.url.starts_with("https://") || code.url.len() > 256 {
            return Err(bad("the server address must be an https:// URL"));
        }
        if !(16..=128).contains(&code.token.len())
            || !code
                .token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("the token is malformed"));
        }
        if code.org.is_empty() || code.org.len() > 64 {
            return Err(bad("the organisation id is malformed"));
        }
        if code
            .sms
            .as_deref()
            .is_some_and(|n| !crate::sms::is_gateway_number(n))
        {
            return Err(bad("the SMS gateway number is malformed"));
        }
        Ok(code)
    }
}

/// The phone's enrollment request: its public key, and a signature over the
/// token with the matching private key (proof of possession).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time token from the code.
    pub token: String,
    /// The device's public key (base64url).
    #[serde(with = "public_key_text")]
    pub public_key: PublicKey,
    /// A name the observer chose, shown to the coordinator.
    pub name: Option<String>,
    /// Ed25519 over [`super::ENROLL_DOMAIN`] || token, base64.
    #[serde(with = "super::b64")]
    pub proof: Vec<u8>,
}

impl EnrollRequest {
    /// The message the proof signs.
    pub fn proof_message(token: &str) -> Vec<u8> {
        [super::ENROLL_DOMAIN, token.as_bytes()].concat()
    }
}

/// The server's answer to a successful enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The device id (derived from its key; echoed for confirmation).
    pub device: DeviceId,
    /// The organisation.
    pub org: String,
    /// Stations this observer is assigned to.
    pub stations: Vec<String>,
    /// Server time at the answer, ms since the Unix epoch.
    pub server_time_ms: i64,
    /// The organisation's key that records of sealed forms are sealed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_key: Option<crate::seal::OrgPublicKey>,
    /// The coordinator's SMS gateway number now, if one is set (absent
    /// from servers before SMS reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_number: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SigningKey;

    fn code() -> EnrollmentCode {
        EnrollmentCode {
            url: "https://127.0.0.1:8443".into(),
            tls_sha256: Sha256Digest::of(b"cert"),
            coordinator: SigningKey::generate().unwrap().public_key(),
            org: "org-1".into(),
            token: "abcdefghijklmnopqrstuvwx".into(),
            sms: None,
        }
    }

    #[test]
    fn codes_round_trip_and_junk_is_refused() {
        let c = code();
        assert_eq!(EnrollmentCode::parse(&c.to_text()).unwrap(), c);
        assert!(EnrollmentCode::parse("hello").is_err());
        assert!(EnrollmentCode::parse(&"OBS1:".repeat(1000)).is_err());
        let mut http = c.clone();
        http.url = "http://example".into();
        assert!(EnrollmentCode::parse(&http.to_text()).is_err());
        let mut short = c.clone();
        short.token = "x".into();
        assert!(EnrollmentCode::parse(&short.to_text()).is_err());
        // A gateway number travels with the code, and only a number does.
        let mut sms = c.clone();
        sms.sms = Some("+77010000000".into());
        assert_eq!(EnrollmentCode::parse(&sms.to_text()).unwrap(), sms);
        sms.sms = Some("call Aigerim".into());
        assert!(EnrollmentCode::parse(&sms.to_text()).is_err());
        // A code without one reads as before (the field is left out).
        assert!(
            !String::from_utf8(URL_SAFE_NO_PAD.decode(&c.to_text()[5..]).unwrap())
                .unwrap()
                .contains("sms")
        );
    }
}
